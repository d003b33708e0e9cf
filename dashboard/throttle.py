"""Limits on the sign-in forms, kept by django-ratelimit in the shared cache.

Rates are read from settings when set (BTRO_RATE_LOGIN_IP and friends), else these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import _get_ip, get_usage

DEFAULT_RATES = {
    "BTRO_RATE_LOGIN_EMAIL_IP": "5/15m",  # failed logins for one email from one address
    "BTRO_RATE_LOGIN_IP": "30/15m",  # failed logins from one address, whatever the email
    # Failed logins for one email from anywhere: slows a guesser with many addresses, and is
    # high enough that a stranger cannot easily lock the owner out.
    "BTRO_RATE_LOGIN_EMAIL": "100/h",
    "BTRO_RATE_SIGNUP_IP": "10/h",
    "BTRO_RATE_RESET_IP": "10/h",
    "BTRO_RATE_RESET_EMAIL": "3/h",
}
THROTTLED_MESSAGE = "Too many attempts. Wait a few minutes, then try again."


def rate(name: str) -> str:
    return getattr(settings, name, DEFAULT_RATES[name])


def rate_for(name: str):
    """A callable rate for the @ratelimit decorator, read at request time."""
    return lambda group, request: rate(name)


def posted_email(group: str, request: HttpRequest) -> str:
    """The submitted email, normalised, as a rate-limit key (the login form calls it username)."""
    value = request.POST.get("email") or request.POST.get("username") or ""
    return value.strip().lower()


def posted_email_and_ip(group: str, request: HttpRequest) -> str:
    # The address as django-ratelimit's "ip" key sees it (RATELIMIT_IP_META_KEY, IPv6 /64).
    return f"{posted_email(group, request)} {_get_ip(request)}"


@dataclass(frozen=True)
class _Limit:
    group: str
    rate_name: str
    key: object


LOGIN_LIMITS = (
    # The narrowest first: a stranger refused for one email and address stops there.
    _Limit("dashboard.login.email_ip", "BTRO_RATE_LOGIN_EMAIL_IP", posted_email_and_ip),
    _Limit("dashboard.login.ip", "BTRO_RATE_LOGIN_IP", "ip"),
    _Limit("dashboard.login.email", "BTRO_RATE_LOGIN_EMAIL", posted_email),
)


class LoginAttempt:
    """A login attempt, counted against every limit before its password is checked.

    The cache's atomic increment is what makes simultaneous attempts see each other. Counting
    stops at the first limit reached, so attempts refused for one email and address never reach
    the email's own ceiling. Counters only go up: the right password adds its attempt to a
    second counter that is subtracted (failures = attempts - refunds).
    """

    def __init__(self, request: HttpRequest):
        self._request = request
        self._counted: list[_Limit] = []
        self.blocked = False
        for limit in LOGIN_LIMITS:
            # Refunds are read before this attempt is counted: every refund read is of an
            # attempt counted earlier, so the difference never undercounts.
            refunds = self._usage(limit, ".refunds", increment=False)
            attempts = self._usage(limit, "", increment=True)
            self._counted.append(limit)
            if attempts is None or refunds is None:  # RATELIMIT_ENABLE = False
                continue
            cache_failed = not attempts["count"]  # django-ratelimit fails closed; so do we
            if cache_failed or attempts["count"] - refunds["count"] > attempts["limit"]:
                self.blocked = True
                return

    def _usage(self, limit: _Limit, suffix: str, *, increment: bool) -> dict | None:
        return get_usage(
            self._request,
            group=limit.group + suffix,
            key=limit.key,
            rate=rate(limit.rate_name),
            increment=increment,
        )

    def refund(self) -> None:
        """Takes this attempt off the counters: it was not a failed password."""
        for limit in self._counted:
            self._usage(limit, ".refunds", increment=True)
        self._counted = []
