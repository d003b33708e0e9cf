"""Deliveries: one signed POST per attempt through the SSRF guard, retried with backoff for
about 3 days, resent by the sweep when no worker took its message; an endpoint that fails
every delivery for 3 days is disabled."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from btro import outbound
from btro.metrics import WEBHOOK_DELIVERIES, count_on_commit

from ..models import Delivery, Event, WebhookEndpoint
from .events import EVENT_DAYS, deliver_on_commit, event_body

logger = logging.getLogger(__name__)
EXCERPT_BYTES = 4096  # of a receiver's answer, kept for the dashboard


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The BTRO-Signature header: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _retry_wait(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt; the schedule's last one repeats."""
    schedule = settings.BTRO_WEBHOOK_RETRY_SCHEDULE
    return float(schedule[min(attempts, len(schedule)) - 1])


# An attempt holds its delivery this long past its timeout: then a worker killed mid-attempt
# has its delivery resent by the sweep (the actor's time limit is the same).
LEASE_MARGIN_SECONDS = 15


def _claim(delivery_id: int, now: datetime) -> bool:
    lease = now + timedelta(seconds=settings.BTRO_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
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
                deliver_on_commit(early)
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
        WEBHOOK_DELIVERIES.labels(outcome="failed").inc()
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
            count_on_commit(WEBHOOK_DELIVERIES.labels(outcome="succeeded").inc)
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
            deliver_on_commit(delivery)
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        outcome = "retrying" if fields.get("next_attempt_at") else "failed"
        count_on_commit(WEBHOOK_DELIVERIES.labels(outcome=outcome).inc)


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
        deliver_on_commit(delivery)


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
                deliver_on_commit(delivery)
                resent += 1
    Event.objects.filter(created__lt=now - timedelta(days=EVENT_DAYS)).delete()
    return resent
