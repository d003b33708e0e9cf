"""Writes for webhooks: endpoints, the events the job core records (the outbox) and their
deliveries: one signed POST per attempt, retried with backoff, resent by the sweep.

The job core calls `event_record` inside the transaction that ends a job, with the job as
the API shows it; this app imports nothing of `jobs`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import string
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import dramatiq
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from btro import outbound
from btro.errors import InvalidParameter

from .models import Delivery, Event, JobWebhookSecret, WebhookEndpoint

logger = logging.getLogger(__name__)

EVENT_TYPES = tuple(Event.Type.values)
ALL_EVENTS = "*"
EXCERPT_BYTES = 4096  # of a receiver's answer, kept for the dashboard
EVENT_DAYS = 30  # events are listed, then deleted, after this many days
_ALPHABET = string.ascii_letters + string.digits


def _token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def signing_secret_new() -> str:
    return "whsec_" + _token(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The BTRO-Signature header: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# Endpoints


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
        id="we_" + _token(24),
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
        id="we_" + _token(24),
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


# Events: the outbox


def _matching(event: Event, *, only: WebhookEndpoint | None = None) -> list[WebhookEndpoint]:
    if only is not None:
        return [only]
    candidates = WebhookEndpoint.objects.filter(
        Q(job_id="") | Q(job_id=event.job_id),
        user_id=event.user_id,
        livemode=event.livemode,
        disabled=False,
    )
    return [
        endpoint
        for endpoint in candidates
        if endpoint.job_id or {ALL_EVENTS, event.type} & set(endpoint.enabled_events)
    ]


def _deliver_on_commit(delivery: Delivery) -> None:
    due = delivery.next_attempt_at or timezone.now()
    delivery_id = delivery.pk

    def send() -> None:
        delay = max(0, math.ceil((due - timezone.now()).total_seconds() * 1000))
        # By name, as jobs' services reach their actor: tasks.py imports this module.
        actor = dramatiq.get_broker().get_actor("deliver_webhook")
        actor.send_with_options(args=(delivery_id,), delay=delay or None)

    transaction.on_commit(send, robust=True)


def _fan_out(event: Event, *, only: WebhookEndpoint | None = None) -> list[Delivery]:
    now = timezone.now()
    deliveries = []
    for endpoint in _matching(event, only=only):
        delivery = Delivery.objects.create(
            event=event, endpoint=endpoint, next_attempt_at=max(event.created, now), sent_at=now
        )
        _deliver_on_commit(delivery)
        deliveries.append(delivery)
    return deliveries


def event_record(*, user_id: int, livemode: bool, type: str, job: dict, at: datetime) -> Event:
    """Write a job's event and its deliveries; call it inside the transaction that ends the
    job, so both commit or neither does. `job` is the job as the API shows it at `at`.

    A job's event not yet due (a test job's, written at creation for its completion 2 s
    later) is replaced when the job's ending is rewritten before then: a test job canceled
    within its 2 s sends job.failed, never job.succeeded.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    with transaction.atomic():
        now = timezone.now()
        pending = (
            Event.objects.select_for_update()
            .filter(job_id=job["id"], sample=False, created__gt=now)
            .first()
        )
        if pending is not None:
            pending.deliveries.all().delete()
            pending.type, pending.data, pending.created = type, {"object": job}, at
            pending.save(update_fields=["type", "data", "created"])
            event = pending
        else:
            event = Event.objects.create(
                id="evt_" + _token(24),
                user_id=user_id,
                livemode=livemode,
                type=type,
                created=at,
                job_id=job["id"],
                data={"object": job},
            )
        _fan_out(event)
    return event


def event_send_sample(*, endpoint: WebhookEndpoint, job: dict) -> Delivery:
    """The dashboard's "Send test event": a job.succeeded for a sample job, to one endpoint."""
    with transaction.atomic():
        event = Event.objects.create(
            id="evt_" + _token(24),
            user_id=endpoint.user_id,
            livemode=endpoint.livemode,
            type=Event.Type.JOB_SUCCEEDED,
            job_id=job["id"],
            data={"object": job},
            sample=True,
        )
        return _fan_out(event, only=endpoint)[0]


def event_body(event: Event) -> bytes:
    """What a delivery POSTs: the event object, as GET /v1/events/:id shows it."""
    return json.dumps(event_object(event), separators=(",", ":")).encode()


def event_object(event: Event) -> dict:
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created": int(event.created.timestamp()),
        "livemode": event.livemode,
        "data": event.data,
    }


# Deliveries


def _retry_wait(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt; the schedule's last one repeats."""
    schedule = settings.BTRO_WEBHOOK_RETRY_SCHEDULE
    return float(schedule[min(attempts, len(schedule)) - 1])


def _claim(delivery_id: int, now: datetime) -> bool:
    lease = now + timedelta(seconds=settings.BTRO_WEBHOOK_TIMEOUT_SECONDS + 60)
    return bool(
        Delivery.objects.filter(
            pk=delivery_id, state=Delivery.State.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=lease, attempts=F("attempts") + 1)
    )


def _post(delivery: Delivery) -> tuple[int | None, bytes, str]:
    """One signed POST: (HTTP status or None, the answer's first bytes, what went wrong)."""
    body = event_body(delivery.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "BTRO-Webhooks/1",
        "BTRO-Signature": signature(
            secret=delivery.endpoint.secret, timestamp=int(time.time()), body=body
        ),
    }
    timeout = settings.BTRO_WEBHOOK_TIMEOUT_SECONDS
    try:
        with outbound.request(
            "POST",
            delivery.endpoint.url,
            allow_private=settings.BTRO_WEBHOOK_ALLOW_PRIVATE,
            timeout=timeout,
            body=body,
            headers=headers,
            max_redirects=0,
            deadline=time.monotonic() + timeout,
        ) as response:
            try:
                excerpt = response.read(EXCERPT_BYTES)
            except outbound.OutboundError:  # the status came; a broken body does not matter
                excerpt = b""
            return response.status, excerpt, ""
    except outbound.OutboundError as err:
        return None, b"", str(err)[:300]


def delivery_attempt(*, delivery_id: int) -> None:
    """Make one attempt if the delivery is due and no other attempt holds it."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        early = Delivery.objects.filter(
            pk=delivery_id, state=Delivery.State.PENDING, next_attempt_at__gt=now
        ).first()
        if early is not None:  # the broker's clock ran ahead of ours: wait for the due time
            with transaction.atomic():
                _deliver_on_commit(early)
        return
    delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if endpoint.disabled:
        Delivery.objects.filter(pk=delivery_id).update(
            state=Delivery.State.FAILED,
            next_attempt_at=None,
            locked_until=None,
            error="The endpoint is disabled.",
        )
        return
    started = time.monotonic()
    status, excerpt, error = _post(delivery)
    latency_ms = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    if status is not None and not ok:
        error = f"The endpoint answered HTTP {status}."
    _record(delivery, ok=ok, status=status, excerpt=excerpt, error=error, latency_ms=latency_ms)


def _record(
    delivery: Delivery, *, ok: bool, status: int | None, excerpt: bytes, error: str, latency_ms: int
) -> None:
    now = timezone.now()
    first = delivery.first_attempt_at or now
    fields: dict = {
        "locked_until": None,
        "first_attempt_at": first,
        "response_status": status,
        "latency_ms": latency_ms,
        "response_excerpt": excerpt.decode("utf-8", "replace"),
        "error": error,
    }
    endpoint = delivery.endpoint
    retry_for = timedelta(seconds=settings.BTRO_WEBHOOK_RETRY_FOR_SECONDS)
    with transaction.atomic():
        if ok:
            fields.update(state=Delivery.State.SUCCEEDED, delivered_at=now, next_attempt_at=None)
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            Delivery.objects.filter(pk=delivery.pk).update(**fields)
            return
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        failing_since = WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since
        if failing_since is not None and now - failing_since >= retry_for:
            _disable(endpoint, now=now)
            fields.update(state=Delivery.State.FAILED, next_attempt_at=None)
        elif now - first >= retry_for:  # the last retry, about 3 days on, failed too
            fields.update(state=Delivery.State.FAILED, next_attempt_at=None)
        else:
            due = now + timedelta(seconds=_retry_wait(delivery.attempts))
            fields.update(next_attempt_at=due, sent_at=now)
            delivery.next_attempt_at = due
            _deliver_on_commit(delivery)
        Delivery.objects.filter(pk=delivery.pk).update(**fields)


def _disable(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    days = settings.BTRO_WEBHOOK_RETRY_FOR_SECONDS / 86400
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled=True,
        disabled_reason=f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery failed "
        f"for {days:g} days.",
    )
    Delivery.objects.filter(endpoint=endpoint, state=Delivery.State.PENDING).update(
        state=Delivery.State.FAILED, next_attempt_at=None, error="The endpoint was disabled."
    )
    logger.warning("webhook endpoint %s disabled after %g days of failures", endpoint.pk, days)


def delivery_resend(*, delivery: Delivery) -> None:
    """Send a delivery again now (the dashboard's Resend), whatever became of it."""
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            state=Delivery.State.PENDING,
            next_attempt_at=now,
            first_attempt_at=None,
            sent_at=now,
            locked_until=None,
        )
        delivery.next_attempt_at = now
        _deliver_on_commit(delivery)


def delivery_sweep(*, resend_seconds: float | None = None) -> int:
    """Resend the deliveries due for a while that no worker took (a lost message, a worker
    killed after the job's last transition); delete events past EVENT_DAYS."""
    now = timezone.now()
    if resend_seconds is None:
        resend_seconds = settings.BTRO_WEBHOOK_RESEND_SECONDS
    late = now - timedelta(seconds=resend_seconds)
    lost = Delivery.objects.filter(
        state=Delivery.State.PENDING, next_attempt_at__lte=late, sent_at__lte=late
    ).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    resent = 0
    for delivery in lost:
        with transaction.atomic():
            if Delivery.objects.filter(pk=delivery.pk, sent_at=delivery.sent_at).update(
                sent_at=now
            ):
                delivery.next_attempt_at = now
                _deliver_on_commit(delivery)
                resent += 1
    Event.objects.filter(created__lt=now - timedelta(days=EVENT_DAYS)).delete()
    return resent
