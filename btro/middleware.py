import secrets

from django.http import HttpRequest, HttpResponse

from btro.errors import error_response
from btro.logs import bound, request_id_var


class RequestIdMiddleware:
    """Give every request an id, echoed in the `Request-Id` header and in error bodies.

    Being first, it also refuses a header holding a NUL (HTTP forbids it, gunicorn refuses it,
    runserver lets it through, and PostgreSQL errors on it in a query) before any view runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = "req_" + secrets.token_urlsafe(12).replace("-", "").replace("_", "")
        with bound(request_id_var, request.request_id):  # every log line of this request
            if any("\x00" in v for name, v in request.META.items() if name.startswith("HTTP_")):
                response = error_response(
                    request, 400, "invalid_request_error", "A request header contains a NUL byte."
                )
            else:
                response = self.get_response(request)
        response["Request-Id"] = request.request_id
        return response
