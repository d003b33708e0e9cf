"""Limits on the sign-in forms, kept by django-ratelimit in the shared cache.

Rates are read from settings when set (BTRO_RATE_LOGIN_IP and friends), else these defaults.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

DEFAULT_RATES = {
    "BTRO_RATE_LOGIN_IP": "30/15m",  # failed logins from one address
    "BTRO_RATE_LOGIN_EMAIL": "5/15m",  # failed logins for one email
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


def _login_usages(request: HttpRequest, *, increment: bool) -> list[dict | None]:
    return [
        get_usage(
            request,
            group="dashboard.login.ip",
            key="ip",
            rate=rate("BTRO_RATE_LOGIN_IP"),
            increment=increment,
        ),
        get_usage(
            request,
            group="dashboard.login.email",
            key=posted_email,
            rate=rate("BTRO_RATE_LOGIN_EMAIL"),
            increment=increment,
        ),
    ]


def login_blocked(request: HttpRequest) -> bool:
    """True once an address or an email has used up its failed attempts."""
    return any(u and u["count"] >= u["limit"] for u in _login_usages(request, increment=False))


def login_failed(request: HttpRequest) -> None:
    _login_usages(request, increment=True)
