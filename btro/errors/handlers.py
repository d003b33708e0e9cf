"""The error envelope written: DRF's exception handler, reshaped, and Django's error pages.

Status and headers come from the error types (btro.errors) or, for DRF's own exceptions, from
DRF's handler (Retry-After, WWW-Authenticate, rollback); this module only writes the body.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.response import TemplateResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from . import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Forbidden,
    InvalidParameter,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    UnsupportedMediaType,
)

logger = logging.getLogger("btro.errors")  # the package's one logger, the name operators grep
TOO_LARGE = "The request body is larger than this server accepts."
SERVER_ERROR = "Something went wrong on our end."

# DRF's exceptions as the catalogue's types; any other keeps the base type.
_FROM_DRF: dict[type[exceptions.APIException], type[ApiError]] = {
    exceptions.NotAuthenticated: AuthenticationError,
    exceptions.AuthenticationFailed: AuthenticationError,
    exceptions.PermissionDenied: Forbidden,
    exceptions.MethodNotAllowed: MethodNotAllowed,
    exceptions.NotAcceptable: NotAcceptable,
    exceptions.ValidationError: InvalidParameter,
    exceptions.ParseError: InvalidParameter,
}


def envelope(request: Any, error: ApiError) -> dict[str, object]:
    body: dict[str, object] = {"type": error.type, "code": error.code, "message": error.message}
    if error.param:
        body["param"] = error.param
    body["request_id"] = getattr(request, "request_id", None)
    return {"error": body}


def error_response(request: Any, error: ApiError, *, status: int | None = None) -> JsonResponse:
    """The envelope, always JSON, whatever renderers the view has (the OpenAPI view's are not)."""
    status = status or error.status
    return JsonResponse(envelope(request, error), status=status, headers=error.headers)


def _first_message(detail: object) -> tuple[str, str | None]:
    """Flatten DRF's validation detail into one message and the field it is about."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message, _ = _first_message(value)
        return message, None if field == "non_field_errors" else str(field)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail), None


def bad_body(exc: BaseException | None) -> ApiError | None:
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


def _from_drf(exc: Exception, context: dict[str, Any]) -> ApiError:
    """The catalogue's error for an exception DRF's handler answered."""
    if isinstance(exc, Http404 | exceptions.NotFound):
        return NotFound("No such resource.")
    if isinstance(exc, PermissionDenied):
        return Forbidden("Permission denied.")
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 1))
        return RateLimited(f"Too many requests. Try again in {wait} s.", retry_after=wait)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        accepted = " or ".join(p.media_type for p in context["view"].get_parsers())
        return UnsupportedMediaType(context["request"].content_type, accepted)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    message, param = _first_message(detail)
    kind = next((ours for drf, ours in _FROM_DRF.items() if isinstance(exc, drf)), ApiError)
    return kind(message, param=param if kind is InvalidParameter else None)


def exception_handler(exc: Exception, context: dict[str, Any]) -> JsonResponse:
    """REST_FRAMEWORK's EXCEPTION_HANDLER: every error of /v1 in the envelope."""
    request = context.get("request")
    exc = bad_body(exc) or exc
    if isinstance(exc, ApiError):
        set_rollback()
        return error_response(request, exc)
    answer = drf_exception_handler(exc, context)
    if answer is None:
        # As Django does for the errors it gives up on: error trackers (Sentry) listen to this.
        got_request_exception.send(sender=None, request=getattr(request, "_request", request))
        logger.exception("Unhandled error", exc_info=exc)
        set_rollback()
        return error_response(request, ServerError(SERVER_ERROR))
    # DRF's answer (status, Retry-After, WWW-Authenticate), with the catalogue's body.
    error = _from_drf(exc, context)
    error.headers.update((name, value) for name, value in answer.items() if name != "Content-Type")
    return error_response(request, error, status=answer.status_code)


def _page_or_envelope(request: HttpRequest, error: ApiError) -> HttpResponse:
    wants_html = "text/html" in request.headers.get("Accept", "")
    if wants_html and not request.path.startswith("/v1/"):
        context = {"status": error.status, "message": error.message}
        page = TemplateResponse(request, "error.html", context, status=error.status)
        return page.render()
    return error_response(request, error)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_envelope(request, bad_body(exception) or BadRequest("Bad request."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_envelope(request, Forbidden("Permission denied."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_envelope(request, NotFound("No such resource."))


def server_error(request: HttpRequest) -> HttpResponse:
    return _page_or_envelope(request, ServerError(SERVER_ERROR))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _page_or_envelope(request, Forbidden("Your form expired. Reload the page and retry."))
