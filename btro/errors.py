"""The one error shape: {"error": {"type", "message", "param"?, "request_id"}}.

Services raise ApiError subclasses (or DRF's exceptions); this module turns them, and
Django's own 400/403/404/500 pages, into the envelope.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.response import TemplateResponse
from rest_framework import exceptions

logger = logging.getLogger(__name__)
TOO_LARGE = "The request body is larger than this server accepts."


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidParameter(ApiError):
    status = 400
    type = "invalid_parameter"


class NotFound(ApiError):
    status = 404
    type = "invalid_request_error"


class Gone(ApiError):
    status = 410
    type = "invalid_request_error"


class LengthRequired(ApiError):
    status = 411
    type = "invalid_request_error"


class PayloadTooLarge(ApiError):
    status = 413
    type = "invalid_request_error"


class UnsupportedMediaType(ApiError):
    status = 415
    type = "invalid_request_error"

    def __init__(self, content_type: str, accepted: str = "multipart/form-data") -> None:
        got = f"Content-Type '{content_type}'" if content_type else "no Content-Type"
        super().__init__(f"The body has {got}: send it as {accepted}.")


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class PaymentRequired(ApiError):
    status = 402
    type = "insufficient_credits"


class IdempotencyMismatch(ApiError):
    status = 400
    type = "idempotency_error"


class IdempotencyInProgress(ApiError):
    status = 409
    type = "idempotency_error"


def error_response(
    request: HttpRequest | None,
    status: int,
    type: str,
    message: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, object] = {"type": type, "message": message}
    if param:
        body["param"] = param
    body["request_id"] = getattr(request, "request_id", None)
    return JsonResponse({"error": body}, status=status, headers=headers)


def _first_message(detail: object) -> tuple[str, str | None]:
    """Flatten DRF's validation detail into one message and the field it is about."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message, _ = _first_message(value)
        return message, None if field == "non_field_errors" else str(field)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail), None


def bad_body(exc: Exception) -> ApiError | None:
    """A body Django's parsing refused (too many fields, broken multipart…), said plainly."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return InvalidParameter(f"The request has more than {limit} fields.")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return InvalidParameter(f"The request has more than {limit} files: send one.")
    if isinstance(exc, MultiPartParserError):
        return InvalidParameter(f"The multipart/form-data body is malformed: {exc}")
    if isinstance(exc, SuspiciousOperation):
        return InvalidParameter("The request is malformed.")
    return None


def exception_handler(exc: Exception, context: dict) -> JsonResponse:
    request = context.get("request")
    exc = bad_body(exc) or exc
    if isinstance(exc, ApiError):
        return error_response(
            request, exc.status, exc.type, exc.message, exc.param, headers=exc.headers
        )
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        return error_response(
            request,
            429,
            "rate_limit_exceeded",
            f"Too many requests. Try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        accepted = " or ".join(p.media_type for p in context["view"].get_parsers())
        error = UnsupportedMediaType(request.content_type, accepted)
        return error_response(request, error.status, error.type, error.message)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return error_response(
            request,
            401,
            "authentication_error",
            str(exc.detail),
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return error_response(request, 404, "invalid_request_error", "No such resource.")
    if isinstance(exc, (exceptions.ValidationError, exceptions.ParseError)):
        message, param = _first_message(exc.detail)
        return error_response(request, 400, "invalid_parameter", message, param)
    if isinstance(exc, exceptions.APIException):
        message, _ = _first_message(exc.detail)
        return error_response(request, exc.status_code, "invalid_request_error", message)
    if isinstance(exc, PermissionDenied):
        return error_response(request, 403, "invalid_request_error", "Permission denied.")
    # As Django does for the errors it gives up on: error trackers (Sentry) listen to this.
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    logger.exception("Unhandled error", exc_info=exc)
    return error_response(request, 500, "api_error", "Something went wrong on our end.")


def _wants_html(request: HttpRequest) -> bool:
    return not request.path.startswith("/v1/") and "text/html" in request.headers.get("Accept", "")


def _page_or_envelope(request: HttpRequest, status: int, type: str, message: str):
    if _wants_html(request):
        return TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status=status
        ).render()
    return error_response(request, status, type, message)


def bad_request(request: HttpRequest, exception: Exception | None = None, **kwargs):
    error = bad_body(exception) if exception is not None else None
    if error is not None:
        return _page_or_envelope(request, error.status, error.type, error.message)
    return _page_or_envelope(request, 400, "invalid_request_error", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception | None = None, **kwargs):
    return _page_or_envelope(request, 403, "invalid_request_error", "Permission denied.")


def page_not_found(request: HttpRequest, exception: Exception | None = None, **kwargs):
    return _page_or_envelope(request, 404, "invalid_request_error", "No such resource.")


def server_error(request: HttpRequest, **kwargs):
    return _page_or_envelope(request, 500, "api_error", "Something went wrong on our end.")


def csrf_failure(request: HttpRequest, reason: str = "", **kwargs):
    return _page_or_envelope(
        request, 403, "invalid_request_error", "Your form expired. Reload the page and retry."
    )


# The OpenAPI document: every /v1 operation's error answers, in the envelope above.
_ERROR_STATUSES = {
    400: "Invalid parameters.",
    401: "No API key, or a malformed, unknown, revoked or expired one.",
    402: "Not enough credits for this live job.",
    404: "No such job in this account and mode.",
    406: "The Accept header asks for something other than JSON.",
    409: "A request with this Idempotency-Key is still running.",
    410: "The job's results have expired.",
    411: "The body came without a Content-Length (chunked transfer encoding).",
    413: "The upload is larger than the limit.",
    415: "The body is not multipart/form-data.",
    429: "Too many requests; retry after Retry-After seconds.",
}
_STATUSES_BY_ACTION = {
    "get": (400, 401, 406, 429),
    "get_one": (401, 404, 406, 410, 429),
    "post": (400, 401, 402, 406, 409, 411, 413, 415, 429),
}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": "string"},
                "request_id": {"type": "string", "nullable": True},
            },
            "required": ["type", "message", "request_id"],
        }
    },
    "required": ["error"],
}
_REQUEST_ID = {
    "description": "This request's id, also in error bodies: quote it to support.",
    "required": True,
    "schema": {"type": "string"},
}


def openapi_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document the error envelope and headers."""
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = _ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post") or not path.startswith("/v1/"):
                continue
            action = "get_one" if method == "get" and "{" in path else method
            responses = operation.setdefault("responses", {})
            for status in _STATUSES_BY_ACTION[action]:
                headers = {"Request-Id": _REQUEST_ID}
                if status == 429:
                    headers["Retry-After"] = {
                        "description": "Seconds to wait before the next request.",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                responses.setdefault(
                    str(status),
                    {
                        "description": _ERROR_STATUSES[status],
                        "headers": headers,
                        "content": {"application/json": {"schema": ref}},
                    },
                )
            for response in responses.values():
                response.setdefault("headers", {}).setdefault("Request-Id", _REQUEST_ID)
    return result
