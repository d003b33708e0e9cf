"""Writes for users, API keys and credits."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from btro.metrics import CREDITS_CHARGED, CREDITS_REFUNDED, count_on_commit

from .keys import key_digest, key_generate, key_mask
from .models import ApiKey, CreditEntry, User
from .selectors import GENERATION_SECONDS, api_key_cache_names

ROLL_GRACE = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


class InsufficientCredits(Exception):
    def __init__(self, *, needed: int, balance: int) -> None:
        super().__init__(
            f"This job costs {needed} credits and your balance is {balance}. "
            "Add credits, or use a test key (sk_test_…), which costs nothing."
        )
        self.needed = needed
        self.balance = balance


def user_create(*, email: str, password: str | None = None) -> User:
    """A new account with its free credit allowance."""
    return _user_insert(email=email, hashed=make_password(password))


@transaction.atomic
def _user_insert(*, email: str, hashed: str) -> User:
    # The password is hashed before: slow on purpose, it must not hold SQLite's write lock.
    user = User.objects.create(email=User.objects.normalize_email(email).lower(), password=hashed)
    if settings.BTRO_FREE_CREDITS:
        credit_grant(user=user, amount=settings.BTRO_FREE_CREDITS, note="Free allowance")
    return user


def user_signup(*, email: str, password: str) -> tuple[User, ApiKey, str]:
    """A new account and its first test key, whose secret is shown once, so the quickstart
    works in the first minute."""
    hashed = make_password(password)
    with transaction.atomic():
        user = _user_insert(email=email, hashed=hashed)
        key, secret = api_key_create(user=user, mode="test", name="Default test key")
    return user, key, secret


def user_get_or_create(*, email: str) -> User:
    user = User.objects.filter(email__iexact=email).first()
    return user or user_create(email=email)


def api_key_create(*, user: User, mode: str, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the secret is returned here once and never stored."""
    secret = key_generate(mode)
    key = ApiKey.objects.create(
        user=user, mode=mode, name=name, digest=key_digest(secret), mask=key_mask(secret)
    )
    return key, secret


@transaction.atomic
def api_key_roll(*, key: ApiKey, expire_in: str = "now") -> tuple[ApiKey, str]:
    """A new secret for the same name and mode; the old one works until `expire_in`."""
    if expire_in not in ROLL_GRACE:
        raise ValueError(f"expire_in must be one of {', '.join(ROLL_GRACE)}")
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    new_key, secret = api_key_create(user=key.user, mode=key.mode, name=key.name)
    expires_at = timezone.now() + ROLL_GRACE[expire_in]
    if key.expires_at is None or expires_at < key.expires_at:
        key.expires_at = expires_at
        key.save(update_fields=["expires_at"])
        _api_key_uncache(key)
    return new_key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _api_key_uncache(key)


def _api_key_uncache(key: ApiKey) -> None:
    """A new generation for the key: its cached entries stop counting on the next request.
    Now, for this transaction's own later reads, and again once the change is committed, for
    a request that read the old row in between and stored it under the newer generation."""
    _, generation_name = api_key_cache_names(key.digest)

    def bump() -> None:
        cache.set(generation_name, secrets.token_hex(8), GENERATION_SECONDS)

    bump()
    transaction.on_commit(bump)


def api_key_touch(*, key: ApiKey) -> None:
    """Record use, writing at most once a minute per key."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        if key.cache_generation is not None:  # under the generation it was read with
            entry_name, _ = api_key_cache_names(key.digest)
            cache.set(entry_name, key, settings.BTRO_API_KEY_CACHE_SECONDS)


def credit_grant(*, user: User, amount: int, note: str = "") -> CreditEntry:
    if amount <= 0:
        raise ValueError("amount must be positive")
    return CreditEntry.objects.create(user=user, kind="grant", amount=amount, note=note)


def _lock(user: User) -> None:
    """Serialise this user's debits until the transaction ends (a no-op lock on SQLite, whose
    IMMEDIATE transactions serialise every write)."""
    User.objects.select_for_update().filter(pk=user.pk).first()


def _require(user: User, amount: int) -> None:
    from .selectors import credit_balance

    balance = credit_balance(user=user)
    if amount > balance:
        raise InsufficientCredits(needed=amount, balance=balance)


def _charged(job_id: str) -> tuple[QuerySet[CreditEntry], int]:
    """A job's debits (its cost and any settlement) and what they add up to."""
    entries = CreditEntry.objects.filter(job_id=job_id, kind__in=("cost", "adjustment"))
    return entries, -(entries.aggregate(total=Sum("amount"))["total"] or 0)


@transaction.atomic
def credit_charge(*, user: User, amount: int, job_id: str) -> CreditEntry:
    """Charge a job, or raise InsufficientCredits; concurrent charges are serialised per user."""
    _lock(user)
    _require(user, amount)
    count_on_commit(lambda: CREDITS_CHARGED.inc(amount))
    return CreditEntry.objects.create(
        user=user, kind="cost", amount=-amount, job_id=job_id, note=f"Job {job_id}"
    )


@transaction.atomic
def credit_settle(*, user: User, job_id: str, amount: int, note: str = "") -> CreditEntry | None:
    """Bring what a job is charged to `amount`, charging the difference (InsufficientCredits
    if the balance does not cover it) or giving back an overcharge.

    A job is settled once: a retry that finds the same amount does nothing.
    """
    _lock(user)
    entries, charged = _charged(job_id)
    extra = amount - charged
    if CreditEntry.objects.filter(job_id=job_id, kind="refund").exists():
        raise ValueError(f"Job {job_id} was refunded; it cannot be settled.")
    if extra == 0:
        return None
    if entries.filter(kind="adjustment").exists():
        raise ValueError(f"Job {job_id} was already settled at {charged} credits, not {amount}.")
    if extra > 0:
        _require(user, extra)
        count_on_commit(lambda: CREDITS_CHARGED.inc(extra))
    else:
        count_on_commit(lambda: CREDITS_REFUNDED.inc(-extra))
    return CreditEntry.objects.create(
        user=user, kind="adjustment", amount=-extra, job_id=job_id, note=note or f"Job {job_id}"
    )


def credit_refund(*, job_id: str) -> CreditEntry | None:
    """Give back what a job cost, adjustment included; a second refund does nothing."""
    entries, charged = _charged(job_id)
    first = entries.first()
    if first is None or charged <= 0:
        return None
    try:
        with transaction.atomic():
            count_on_commit(lambda: CREDITS_REFUNDED.inc(charged))
            return CreditEntry.objects.create(
                user_id=first.user_id,
                kind="refund",
                amount=charged,
                job_id=job_id,
                note=f"Refund for failed job {job_id}",
            )
    except IntegrityError:
        return None
