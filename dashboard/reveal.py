"""A secret shown once: kept in the session for the next page that shows keys, then gone."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from accounts.models import ApiKey

_SESSION_KEY = "dashboard_revealed_secret"


@dataclass(frozen=True)
class Revealed:
    key_id: int
    mode: str
    secret: str


def reveal_later(request: HttpRequest, *, key: ApiKey, secret: str) -> None:
    request.session[_SESSION_KEY] = {"key_id": key.pk, "mode": key.mode, "secret": secret}


def take_revealed(request: HttpRequest) -> Revealed | None:
    """The secret waiting to be shown, removed from the session so no later page shows it."""
    data = request.session.pop(_SESSION_KEY, None)
    if not data:
        return None
    return Revealed(key_id=data["key_id"], mode=data["mode"], secret=data["secret"])
