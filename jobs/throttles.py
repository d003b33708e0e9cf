"""Per-key rate limits; django-ratelimit keeps the counters in the shared cache."""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle


class KeyThrottle(BaseThrottle):
    """Counts requests per API key (and per job, for polling) in fixed windows."""

    group = ""
    rate_setting = ""

    def scope(self, request, view) -> str:
        return str(request.auth.pk)

    def allow_request(self, request, view) -> bool:
        scope = self.scope(request, view)
        usage = get_usage(
            request,
            group=f"btro.{self.group}",
            key=lambda group, req: scope,
            rate=getattr(settings, self.rate_setting),
            increment=True,
        )
        self._wait = usage["time_left"] if usage else 1
        return not (usage and usage["should_limit"])

    def wait(self) -> float:
        return self._wait


class CreateThrottle(KeyThrottle):
    group = "create"
    rate_setting = "BTRO_RATE_CREATE"


class ReadThrottle(KeyThrottle):
    group = "read"
    rate_setting = "BTRO_RATE_READ"


class PollThrottle(KeyThrottle):
    """One job polled faster than about once per 2 s."""

    group = "poll"
    rate_setting = "BTRO_RATE_POLL"

    def scope(self, request, view) -> str:
        return f"{request.auth.pk}:{view.kwargs.get('pk', '')}"
