"""Reads for users, API keys and credits."""

from __future__ import annotations

from django.db.models import Sum
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
