"""Per-key rate limits; django-ratelimit keeps the counters in the shared cache."""

from __future__ import annotations

import math
from typing import ClassVar

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from btro.errors import RateLimited


class KeyThrottle(BaseThrottle):
    """Counts requests per API key (and per job, for polling) in fixed windows."""

    group = ""
    rate_setting = ""
    message = "Too many requests with this API key. Try again in {wait} s."

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

    def error(self) -> RateLimited:
        wait = max(1, math.ceil(self.wait() or 1))
        return RateLimited(self.message.format(wait=wait), retry_after=wait)


class CreateThrottle(KeyThrottle):
    group = "create"
    rate_setting = "BTRO_RATE_CREATE"
    message = "Too many jobs created with this API key. Create the next in {wait} s."


class WriteThrottle(KeyThrottle):
    """Changes to an existing job: update, cancel, delete."""

    group = "write"
    rate_setting = "BTRO_RATE_WRITE"
    message = "Too many changes to jobs with this API key. Try again in {wait} s."


class ReadThrottle(KeyThrottle):
    group = "read"
    rate_setting = "BTRO_RATE_READ"


class PollThrottle(KeyThrottle):
    """One job polled faster than about once per 2 s."""

    group = "poll"
    rate_setting = "BTRO_RATE_POLL"
    message = "This job was polled too often. Try again in {wait} s; poll every 2 to 5 seconds."

    def scope(self, request, view) -> str:
        return f"{request.auth.pk}:{view.kwargs.get('pk', '')}"


# A viewset base: the throttles of `throttles_by_action`, the longest wait's message. An
# action without an entry gets the read throttle, never none. (A comment: drf-spectacular
# would make a docstring here the description of every operation.)
class ThrottledByAction(APIView):
    action: str  # set by ViewSetMixin (None for a method without an action)
    throttles_by_action: ClassVar[dict[str, list[type[KeyThrottle]]]] = {}
    default_throttles: ClassVar[list[type[KeyThrottle]]] = [ReadThrottle]

    def key_throttles(self) -> list[KeyThrottle]:
        classes = self.throttles_by_action.get(self.action or "", self.default_throttles)
        return [throttle() for throttle in classes]

    def get_throttles(self) -> list[BaseThrottle]:
        return list(self.key_throttles())

    def check_throttles(self, request: Request) -> None:
        # Every throttle counts the request, as DRF's own check does.
        refusing = [t for t in self.key_throttles() if not t.allow_request(request, self)]
        if refusing:
            raise max(refusing, key=lambda throttle: throttle.wait()).error()
