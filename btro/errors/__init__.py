"""The API's errors: each type carries its HTTP status, its `type` and its headers.

Services raise these; `btro.errors.handlers` writes them as the one envelope,
{"error": {"type", "code", "message", "param"?, "request_id"}}: `type` is the seed's broad
kind, `code` names the catalogue entry, one to each, so a client can tell apart entries that
share a status and type (a job that already ended from an unreadable request, both 400
invalid_request_error). CATALOGUE, with each type's `when`,
feeds the OpenAPI document, the API reference page and the README's table. This module
imports no HTTP machinery, so the core can raise an error without knowing about requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code = "bad_request"  # each catalogue entry's own: its name in snake case
    when = ""  # one line for the docs: when the API answers this

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A kind of an entry (UploadTooLarge) keeps the entry's code.
        if ApiError in cls.__bases__ and "code" not in cls.__dict__:
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(
        self, message: str, *, param: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})


class InvalidParameter(ApiError):
    type = "invalid_parameter"
    when = (
        "A parameter is missing (e.g. file), unknown (e.g. tierr) or invalid (e.g. tier), "
        "or the body is malformed."
    )


class BadRequest(ApiError):
    when = "The request itself is unreadable (e.g. a header holding a NUL byte)."


class JobEnded(ApiError):
    when = "The job has already ended (succeeded, or failed other than canceled): no cancel."


class IdempotencyMismatch(ApiError):
    type = "idempotency_error"
    when = "This Idempotency-Key was used with other parameters, another file or another path."


class AuthenticationError(ApiError):
    status = 401
    type = "authentication_error"
    when = "No API key, or a malformed, unknown, revoked or expired one."


class PaymentRequired(ApiError):
    status = 402
    type = "insufficient_credits"
    code = "insufficient_credits"
    when = "Not enough credits for this live job."


class Forbidden(ApiError):
    status = 403
    when = "Permission denied, or a dashboard form that expired."


class NotFound(ApiError):
    status = 404
    when = "No such job, event or webhook endpoint in this account and mode."


class MethodNotAllowed(ApiError):
    status = 405
    when = "The path does not take this HTTP method."


class NotAcceptable(ApiError):
    status = 406
    when = "The Accept header asks for something other than JSON."


class IdempotencyInProgress(ApiError):
    status = 409
    type = "idempotency_error"
    when = "A request with this Idempotency-Key is still running."


class Gone(ApiError):
    status = 410
    when = "The job's results have expired, or the job was deleted."


class LengthRequired(ApiError):
    status = 411
    when = "The body came without a Content-Length (chunked transfer encoding)."


class PayloadTooLarge(ApiError):
    status = 413
    when = "The upload is larger than the limit."


class UploadTooLarge(PayloadTooLarge):
    """The uploaded file is over BTRO_MAX_UPLOAD_BYTES, however it was found out."""

    def __init__(self) -> None:
        limit = settings.BTRO_MAX_UPLOAD_BYTES
        super().__init__(f"The file is larger than the {limit // 2**20} MB limit.", param="file")


class UnsupportedMediaType(ApiError):
    status = 415
    when = "The body is neither multipart/form-data nor application/x-www-form-urlencoded."

    def __init__(self, content_type: str, accepted: str = "multipart/form-data") -> None:
        got = f"Content-Type '{content_type}'" if content_type else "no Content-Type"
        super().__init__(f"The body has {got}: send it as {accepted}.")


class RangeNotSatisfiable(ApiError):
    status = 416
    when = "A result download's Range starts past the end of the file."

    def __init__(self, *, size: int) -> None:
        super().__init__(
            "The requested range is not satisfiable.", headers={"Content-Range": f"bytes */{size}"}
        )


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_exceeded"
    when = "Too many requests; retry after Retry-After seconds."

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServerError(ApiError):
    status = 500
    type = "api_error"
    when = "Something went wrong on our end."


# Every answer the API can give outside 2xx, in the order of the docs.
CATALOGUE: tuple[type[ApiError], ...] = (
    InvalidParameter,
    BadRequest,
    JobEnded,
    IdempotencyMismatch,
    AuthenticationError,
    PaymentRequired,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    IdempotencyInProgress,
    Gone,
    LengthRequired,
    PayloadTooLarge,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    RateLimited,
    ServerError,
)


def described(status: int) -> str:
    """What an answer with this status means, from every error type that has it."""
    whens = [error.when for error in CATALOGUE if error.status == status]
    if not whens:
        raise KeyError(f"No error type in the catalogue answers {status}.")
    return " ".join(whens)
