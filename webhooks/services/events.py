"""Events: the outbox. The job core calls `event_record` inside the transaction that ends a
job, with the job as the API shows it; the event's deliveries are written with it and sent
to the broker once it commits."""

from __future__ import annotations

import json
import math
from datetime import datetime

import dramatiq
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Delivery, Event, WebhookEndpoint
from .endpoints import ALL_EVENTS, EVENT_TYPES, new_id

EVENT_DAYS = 30  # events are listed, then deleted, after this many days


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


def deliver_on_commit(delivery: Delivery) -> None:
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
        deliver_on_commit(delivery)
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
                id="evt_" + new_id(24),
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
            id="evt_" + new_id(24),
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
