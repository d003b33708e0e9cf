import secrets
from collections.abc import Callable
from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from btro.errors import BadRequest
from btro.errors.handlers import error_response
from btro.logs import bound, request_id_var


class IdentifiedRequest(HttpRequest):
    """A request RequestIdMiddleware has seen: error bodies and log records read its id."""

    request_id: str


class RequestIdMiddleware:
    """Give every request an id, echoed in the `Request-Id` header and in error bodies.

    Being first, it also refuses a header holding a NUL (HTTP forbids it, gunicorn refuses it,
    runserver lets it through, and PostgreSQL errors on it in a query) before any view runs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = "req_" + secrets.token_urlsafe(12).replace("-", "").replace("_", "")
        cast(IdentifiedRequest, request).request_id = request_id
        response: HttpResponseBase
        with bound(request_id_var, request_id):  # every log line of this request
            if any("\x00" in v for name, v in request.META.items() if name.startswith("HTTP_")):
                response = error_response(
                    request, BadRequest("A request header contains a NUL byte.")
                )
            else:
                response = self.get_response(request)
        response["Request-Id"] = request_id
        return response
