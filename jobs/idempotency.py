"""Idempotency-Key for any POST, as Stripe does it: `@idempotent` on a viewset action.

The answer a request produced by running (a 201, or an error such as 400 or 402) is stored
for 24 hours and replayed to the same account and mode. A server error, a 409 conflict or a
429, or a request that crashed, stores nothing: the key is released and a retry runs again.
The same key with another path, other parameters or another file is a 400; a retry that
arrives while the first request is still running is a 409.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from btro.errors import IdempotencyInProgress, IdempotencyMismatch

from .models import IdempotencyRecord

TTL = IdempotencyRecord.TTL
ABANDONED = timedelta(minutes=10)  # a request that never finished (its process died)
NOT_STORED = (409, 429)  # answers about other requests, not this one's result
HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Retry safely: the first answer to a key is replayed for 24 h; "
        "a 5xx, 409 or 429 is not, so a retry runs again."
    ),
)
Action = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Replay:
    status: int
    body: object


def _file_digest(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return f"{upload.name}:{digest.hexdigest()}"


def idempotency_fingerprint(
    *, method: str, path: str, params: object, files: Mapping[str, list[UploadedFile]]
) -> str:
    """What a retry must repeat: the endpoint, the body's parameters, each file's name and bytes."""
    uploads = {name: [_file_digest(upload) for upload in group] for name, group in files.items()}
    request = {"method": method, "path": path, "params": params, "files": uploads}
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def request_fingerprint(request: Request) -> str:
    files = dict(request.FILES.lists())
    params = request.data
    if isinstance(params, MultiValueDict):  # a form: its fields, not the files DRF merges in
        fields = (
            (name, [v for v in values if isinstance(v, str)]) for name, values in params.lists()
        )
        params = {name: values for name, values in fields if values}
    return idempotency_fingerprint(
        method=request.method or "",
        path=request.path.rstrip("/"),  # /v1/jobs/ is /v1/jobs
        params=params,
        files=files,
    )


def idempotency_begin(*, api_key: ApiKey, key: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Claim `key` for this request (its record), or say what to answer instead (a replay)."""
    if not key or len(key) > 255 or not (key.isascii() and key.isprintable()):
        raise IdempotencyMismatch(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.", param="Idempotency-Key"
        )
    now = timezone.now()
    scope = {"user": api_key.user, "livemode": api_key.livemode, "key": key}
    IdempotencyRecord.objects.filter(**scope, created__lte=now - TTL).delete()
    IdempotencyRecord.objects.filter(
        **scope, response_status__isnull=True, created__lte=now - ABANDONED
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(**scope, fingerprint=fingerprint)
    except IntegrityError:
        pass
    first = IdempotencyRecord.objects.filter(**scope).first()
    if first is None:  # released or expired between the two queries: retry
        raise IdempotencyInProgress("A request with this Idempotency-Key is in progress.")
    if first.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was used with different parameters or a different file. "
            "Use a new key for a new request.",
            param="Idempotency-Key",
        )
    if first.response_status is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still in progress; retry in a moment."
        )
    return Replay(first.response_status, first.response_body)


def idempotency_finish(*, record: IdempotencyRecord, response: HttpResponse | None) -> None:
    """Store the answer for replay, or release the key when there is none worth replaying:
    the request crashed, or answered a 5xx, a 409 or a 429."""
    if response is None or response.status_code >= 500 or response.status_code in NOT_STORED:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    # DRF's Response, or the error envelope (JSON)
    body = response.data if isinstance(response, Response) else json.loads(response.content)
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=response.status_code, response_body=body
    )


def idempotent(action: Action) -> Action:
    """Make a POST action safe to retry with an Idempotency-Key header (see above)."""

    @functools.wraps(action)
    def run(view: APIView, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return action(view, request, *args, **kwargs)
        claim = idempotency_begin(
            api_key=cast(ApiKey, request.auth), key=key, fingerprint=request_fingerprint(request)
        )
        if isinstance(claim, Replay):
            return Response(
                claim.body, status=claim.status, headers={"Idempotent-Replayed": "true"}
            )
        response: HttpResponse | None = None
        try:
            try:
                response = action(view, request, *args, **kwargs)
            except Exception as exc:  # an error answer is this request's result too
                response = view.handle_exception(exc)
        finally:  # with no response (a crash), the key is released
            idempotency_finish(record=claim, response=response)
        return response

    return extend_schema(parameters=[HEADER])(run)


def idempotency_release_in_progress() -> int:
    """Release every key a request still holds. Only for the one web process at its start
    (the embedded default): the requests that held them died with the last process."""
    return IdempotencyRecord.objects.filter(response_status__isnull=True).delete()[0]
