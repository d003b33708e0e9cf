"""Endpoints: a URL, the event types it wants and its signing secret; a job's own `webhook`
URL is an endpoint bound to that job, signed with the mode's job webhook secret."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable

from accounts.models import User
from btro import outbound
from btro.errors import InvalidParameter

from ..models import Event, JobWebhookSecret, WebhookEndpoint

EVENT_TYPES = tuple(Event.Type.values)
ALL_EVENTS = "*"
_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def signing_secret_new() -> str:
    return "whsec_" + new_id(32)


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2048:
        raise InvalidParameter("The url must be at most 2048 characters.", param="url")
    try:
        outbound.check_url(url)
    except outbound.OutboundError as err:
        raise InvalidParameter(f"Invalid url: {err}", param="url") from None
    return url


def _check_events(events: Iterable[str]) -> list[str]:
    events = list(dict.fromkeys(events))
    if not events:
        raise InvalidParameter(
            f"enabled_events needs at least one of: {', '.join(EVENT_TYPES)} or '*'.",
            param="enabled_events",
        )
    unknown = [event for event in events if event not in (*EVENT_TYPES, ALL_EVENTS)]
    if unknown:
        raise InvalidParameter(
            f"Unknown event type '{unknown[0][:60]}'. Choose from: {', '.join(EVENT_TYPES)}, '*'.",
            param="enabled_events",
        )
    return [ALL_EVENTS] if ALL_EVENTS in events else events


def endpoint_create(
    *,
    user: User,
    livemode: bool,
    url: str,
    enabled_events: Iterable[str],
    description: str = "",
) -> WebhookEndpoint:
    """A new endpoint with its own signing secret (the caller shows it once)."""
    return WebhookEndpoint.objects.create(
        id="we_" + new_id(24),
        user=user,
        livemode=livemode,
        url=_check_url(url),
        enabled_events=_check_events(enabled_events),
        description=description,
        secret=signing_secret_new(),
    )


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    enabled_events: Iterable[str] | None = None,
    description: str | None = None,
    disabled: bool | None = None,
) -> WebhookEndpoint:
    if url is not None:
        endpoint.url = _check_url(url)
    if enabled_events is not None:
        endpoint.enabled_events = _check_events(enabled_events)
    if description is not None:
        endpoint.description = description
    if disabled is not None:
        endpoint.disabled = disabled
        endpoint.disabled_reason = "Disabled by you." if disabled else ""
        endpoint.failing_since = None  # re-enabled: a fresh start
    endpoint.save()
    return endpoint


def endpoint_roll_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.secret = signing_secret_new()
    endpoint.save(update_fields=["secret"])
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def job_webhook_secret(*, user: User, livemode: bool) -> str:
    """The mode's secret for jobs' own webhook URLs, made on first use."""
    row, _ = JobWebhookSecret.objects.get_or_create(
        user=user, livemode=livemode, defaults={"secret": signing_secret_new()}
    )
    return row.secret


def job_webhook_set(*, user: User, livemode: bool, job_id: str, url: str) -> WebhookEndpoint:
    """The `webhook` URL of one job: an endpoint that gets that job's events only."""
    return WebhookEndpoint.objects.create(
        id="we_" + new_id(24),
        user=user,
        livemode=livemode,
        url=_check_url(url),
        enabled_events=[ALL_EVENTS],
        secret=job_webhook_secret(user=user, livemode=livemode),
        job_id=job_id,
    )


def job_webhook_check(url: str) -> str:
    """Check a job's `webhook` URL before the job is made."""
    try:
        return _check_url(url)
    except InvalidParameter as err:
        raise InvalidParameter(err.message.replace("url", "webhook"), param="webhook") from None
