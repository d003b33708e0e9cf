import secrets

from django.http import HttpRequest, HttpResponse

from btro.logs import bound, request_id_var


class RequestIdMiddleware:
    """Give every request an id, echoed in the `Request-Id` header and in error bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = "req_" + secrets.token_urlsafe(12).replace("-", "").replace("_", "")
        with bound(request_id_var, request.request_id):  # every log line of this request
            response = self.get_response(request)
        response["Request-Id"] = request.request_id
        return response
