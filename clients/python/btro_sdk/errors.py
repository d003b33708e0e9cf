"""The SDK's exceptions: one class per error type of the API's catalogue, plus the client's own.

The API answers every error as {"error": {"type", "code", "message", "param"?, "request_id"}};
the class is chosen by the answer's `code` (one to each class), else by its status and type
(tests/clients/test_sdk_errors.py keeps the list below in step with the server's catalogue).
"""

from __future__ import annotations

import re
from typing import Any


class BtroError(Exception):
    """Anything the SDK raises."""


class APIError(BtroError):
    """An error answer from the API."""

    # The class's status, type and code; an instance carries what the server said.
    status: int = 400
    type: str = "invalid_request_error"
    code: str = "bad_request"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:  # the server's rule: the class's name in snake case
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = self.status if status is None else status
        self.type = self.type if type is None else type
        self.code = self.code if code is None else code
        self.param = param
        self.request_id = request_id
        self.headers = headers or {}
        self.body = body

    def __str__(self) -> str:
        where = f" (param: {self.param})" if self.param else ""
        kind = f"{self.status} {self.type} ({self.code})"
        return f"{self.message}{where} [{kind}, request_id: {self.request_id}]"


class InvalidParameter(APIError):
    type = "invalid_parameter"


class BadRequest(APIError):
    pass


class JobEnded(BadRequest):
    """Cancel of a job that has already ended (400 invalid_request_error, code job_ended); a
    kind of BadRequest, so code that catches BadRequest still catches it."""


class IdempotencyMismatch(APIError):
    type = "idempotency_error"


class AuthenticationError(APIError):
    status = 401
    type = "authentication_error"


class PaymentRequired(APIError):
    status = 402
    type = "insufficient_credits"
    code = "insufficient_credits"


class Forbidden(APIError):
    status = 403


class NotFound(APIError):
    status = 404


class MethodNotAllowed(APIError):
    status = 405


class NotAcceptable(APIError):
    status = 406


class IdempotencyInProgress(APIError):
    status = 409
    type = "idempotency_error"


class Gone(APIError):
    status = 410


class LengthRequired(APIError):
    status = 411


class PayloadTooLarge(APIError):
    status = 413


class UnsupportedMediaType(APIError):
    status = 415


class RangeNotSatisfiable(APIError):
    status = 416


class RateLimited(APIError):
    status = 429
    type = "rate_limit_exceeded"


class ServerError(APIError):
    status = 500
    type = "api_error"


# The server's catalogue, in its order (btro/errors/__init__.py CATALOGUE).
CATALOGUE: tuple[type[APIError], ...] = (
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

# (status, type) → class; where two types share both, the first in catalogue order.
_BY_STATUS_AND_TYPE: dict[tuple[int, str], type[APIError]] = {}
for _cls in CATALOGUE:
    _BY_STATUS_AND_TYPE.setdefault((_cls.status, _cls.type), _cls)


_BY_CODE = {cls.code: cls for cls in CATALOGUE}


def error_class(status: int, type: str, code: str | None = None) -> type[APIError]:
    """The class for an answer: by code (where its status agrees), else by status and type,
    else by type, else by status family (a server older than codes, or a newer code)."""
    if code in _BY_CODE and _BY_CODE[code].status == status:
        return _BY_CODE[code]
    if (status, type) in _BY_STATUS_AND_TYPE:
        return _BY_STATUS_AND_TYPE[(status, type)]
    for cls in CATALOGUE:
        if cls.type == type and cls.type not in ("invalid_request_error", "api_error"):
            return cls
    if status >= 500:
        return ServerError
    for cls in CATALOGUE:
        if cls.status == status:
            return cls
    return APIError


class APIConnectionError(BtroError):
    """The API could not be reached, or the connection dropped, after every retry."""


class SignatureVerificationError(BtroError):
    """A webhook's BTRO-Signature does not match its body and secret, or is too old."""


class WaitTimeout(BtroError):
    """job.wait() gave up before the job finished."""

    def __init__(self, message: str, *, job: Any) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(BtroError):
    """job.wait() saw the job end `failed`; `type` and `message` are the job's error."""

    def __init__(self, job: Any) -> None:
        error = job.get("error") or {}
        self.job = job
        self.type: str = error.get("type") or "unknown"
        self.message: str = error.get("message") or "The job failed."
        super().__init__(f"Job {job.get('id')} failed ({self.type}): {self.message}")


class JobCanceled(JobFailed):
    """job.wait() saw the job canceled."""
