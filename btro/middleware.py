import secrets
from collections.abc import Callable
from typing import cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_prometheus import middleware as prometheus
from django_prometheus.utils import Time

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


class PrometheusAfterMiddleware(prometheus.PrometheusAfterMiddleware):
    """django-prometheus' counts by view, method and status, for any request a client sends:
    a Content-Length that is no number (the view answers 400) raises nothing here, and a
    method HTTP does not define is labelled `<invalid method>` on every metric (the latency
    histogram took it raw: one series per made-up method)."""

    def process_request(self, request: HttpRequest) -> None:
        try:
            super().process_request(request)
        except ValueError:  # int() of the Content-Length, the last step but one
            request.prometheus_after_middleware_event = Time()  # type: ignore[attr-defined]

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels:
            labels["method"] = self._method(request)
        return super().label_metric(metric, request, response, **labels)
