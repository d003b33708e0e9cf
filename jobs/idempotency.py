"""Idempotency-Key for POST /v1/jobs, as Stripe does it.

The answer a request produced by running (a 201, or an error such as 400 or 402) is stored
for 24 hours and replayed to the same account and mode. A server error, a 409 conflict or a
429, or a request that crashed, stores nothing: the key is released and a retry runs again.
The same key with other parameters is a 400; a retry that arrives while the first request
is still running is a 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.models import ApiKey
from btro.errors import IdempotencyInProgress, IdempotencyMismatch

from .models import IdempotencyRecord

TTL = timedelta(hours=24)
ABANDONED = timedelta(minutes=10)  # a request that never finished (its process died)
NOT_STORED = (409, 429)  # answers about other requests, not this one's result


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


def idempotency_fingerprint(*, params: dict[str, str | None], upload: UploadedFile | None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(params, sort_keys=True).encode())
    if upload is not None:
        file_hash = hashlib.sha256()
        for chunk in upload.chunks():
            file_hash.update(chunk)
        upload.seek(0)
        digest.update(f"{upload.name}:{file_hash.hexdigest()}".encode())
    return digest.hexdigest()


def idempotency_begin(
    *, api_key: ApiKey, key: str, fingerprint: str
) -> tuple[IdempotencyRecord | None, Replay | None]:
    """Claim `key` for this request, or say what to answer instead."""
    if not key or len(key) > 255:
        raise IdempotencyMismatch(
            "Idempotency-Key must be 1 to 255 characters.", param="Idempotency-Key"
        )
    now = timezone.now()
    scope = {"user": api_key.user, "livemode": api_key.livemode, "key": key}
    IdempotencyRecord.objects.filter(**scope, created__lte=now - TTL).delete()
    IdempotencyRecord.objects.filter(
        **scope, response_status__isnull=True, created__lte=now - ABANDONED
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(**scope, fingerprint=fingerprint)
        return record, None
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.filter(**scope).first()
    if record is None:  # released or expired between the two queries: retry
        raise IdempotencyInProgress("A request with this Idempotency-Key is in progress.")
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was used with different parameters or a different file. "
            "Use a new key for a new request.",
            param="Idempotency-Key",
        )
    if record.response_status is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still in progress; retry in a moment."
        )
    return None, Replay(record.response_status, record.response_body)


def idempotency_finish(*, record: IdempotencyRecord, response: HttpResponseBase | None) -> None:
    """Store the answer for replay, or release the key when there is none worth replaying:
    the request crashed, or answered a 5xx, a 409 or a 429."""
    status = None if response is None else response.status_code
    if status is None or status >= 500 or status in NOT_STORED:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    body = getattr(response, "data", None)  # DRF's Response; the error envelope is JSON
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=status, response_body=json.loads(response.content) if body is None else body
    )


def idempotency_purge() -> int:
    return IdempotencyRecord.objects.filter(created__lte=timezone.now() - TTL).delete()[0]
