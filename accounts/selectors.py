"""Reads for users, API keys and credits."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, Sum
from django.db.models.query import QuerySet
from django.utils import timezone

from .keys import key_digest, key_mode
from .models import ApiKey, CreditEntry, User


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The usable key for this secret, or None. Malformed keys never reach the database."""
    if key_mode(secret) is None:
        return None
    key = _api_key_by_digest(key_digest(secret))
    if key is None or not key.is_usable(timezone.now()) or not key.user.is_active:
        return None
    return key


GENERATION_SECONDS = 86400  # one lost is harmless: a new one matches no entry


def api_key_cache_names(digest: str) -> tuple[str, str]:
    """The cache's names for a key's entry and for its generation."""
    return f"btro:apikey:{digest}", f"btro:apikey-generation:{digest}"


def _api_key_by_digest(digest: str) -> ApiKey | None:
    """The key and its user; from the cache while the entry's generation is the key's current
    one (api_key_revoke and api_key_roll replace it), else from the database."""
    seconds = settings.BTRO_API_KEY_CACHE_SECONDS
    if not seconds:
        return _api_key_query(digest)
    entry_name, generation_name = api_key_cache_names(digest)
    found = cache.get_many([entry_name, generation_name])
    generation = found.get(generation_name)
    entry = found.get(entry_name)
    if generation is not None and entry is not None and entry.cache_generation == generation:
        return entry
    if generation is None:  # read before the database: a later bump then voids what we store
        cache.add(generation_name, secrets.token_hex(8), GENERATION_SECONDS)
        generation = cache.get(generation_name)
    key = _api_key_query(digest)
    if key is not None and generation is not None:
        key.cache_generation = generation
        cache.set(entry_name, key, seconds)
    return key


def _api_key_query(digest: str) -> ApiKey | None:
    keys = ApiKey.objects.select_related("user").defer("user__password")  # not into the cache
    try:  # get(), not first(): a unique lookup needs no ORDER BY
        return keys.get(digest=digest)
    except ApiKey.DoesNotExist:
        return None


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
