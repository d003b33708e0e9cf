"""Per-key rate limits; django-ratelimit keeps the counters in the shared cache."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import ClassVar

from django.conf import settings
from django.core.cache import caches
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)
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
        return not count_requests(request, view, [self])[0]

    def count(self, request, view) -> bool:
        """Count this request with django-ratelimit: True when it is over the limit."""
        scope = self.scope(request, view)
        usage = get_usage(
            request,
            group=f"btro.{self.group}",
            key=lambda group, req: scope,
            rate=getattr(settings, self.rate_setting),
            increment=True,
        )
        self._wait = usage["time_left"] if usage else 1
        return bool(usage and usage["should_limit"])

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


def count_requests(request, view, throttles: Sequence[KeyThrottle]) -> list[bool]:
    """Count the request in each throttle's window: whether each refuses it. On Redis
    (btro.cache) in one round trip, with django-ratelimit's own keys and windows; on any
    other cache, throttle by throttle through django-ratelimit."""
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    count_many = getattr(cache, "incr_or_add_many", None)
    if count_many is None or not getattr(settings, "RATELIMIT_ENABLE", True):
        return [throttle.count(request, view) for throttle in throttles]
    windows = []
    for throttle in throttles:
        scope, rate = throttle.scope(request, view), getattr(settings, throttle.rate_setting)
        limit, period = _split_rate(rate)
        window = _get_window(scope, period)
        key = _make_cache_key(f"btro.{throttle.group}", window, rate, scope, None)
        windows.append((key, limit, period + EXPIRATION_FUDGE, window))
    counts = count_many({key: ttl for key, _, ttl, _ in windows})
    now = int(time.time())
    refused = []
    for throttle, (key, limit, _, window) in zip(throttles, windows, strict=True):
        throttle._wait = window - now
        refused.append(counts[key] > limit)
    return refused


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
        throttles = self.key_throttles()
        refused = count_requests(request, self, throttles)
        refusing = [t for t, no in zip(throttles, refused, strict=True) if no]
        if refusing:
            raise max(refusing, key=lambda throttle: throttle.wait()).error()
