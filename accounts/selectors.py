"""Reads for users, API keys and credits."""

from __future__ import annotations

from django.db.models import Q, Sum
from django.db.models.query import QuerySet
from django.utils import timezone

from .keys import key_digest, key_mode
from .models import ApiKey, CreditEntry, User


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The usable key for this secret, or None. Malformed keys never reach the database."""
    if key_mode(secret) is None:
        return None
    key = ApiKey.objects.select_related("user").filter(digest=key_digest(secret)).first()
    if key is None or not key.is_usable(timezone.now()) or not key.user.is_active:
        return None
    return key


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True)


def credit_balance(*, user: User) -> int:
    return CreditEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"] or 0


def credit_ledger(*, user: User) -> QuerySet[CreditEntry]:
    return CreditEntry.objects.filter(user=user)


def api_key_list_current(*, user: User) -> QuerySet[ApiKey]:
    """The keys that still work: neither revoked nor past an expiry set by a roll."""
    now = timezone.now()
    return api_key_list(user=user).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def api_key_get(*, user: User, key_id: int) -> ApiKey | None:
    """One of the user's unrevoked keys; another account's key is None, like a missing one."""
    return api_key_list(user=user).filter(pk=key_id).first()
