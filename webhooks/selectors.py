"""Reads for webhooks, scoped to the caller's account and mode: another account's or mode's
endpoint or event is indistinguishable from none."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from btro.errors import InvalidParameter, NotFound

from .models import Delivery, Event, WebhookEndpoint
from .services import EVENT_DAYS


def events_visible(*, user: User, livemode: bool) -> QuerySet[Event]:
    """The last 30 days of the mode's events, none still to come (a test job's, before its
    2 s are up) and no dashboard sample."""
    now = timezone.now()
    return Event.objects.filter(
        user=user,
        livemode=livemode,
        sample=False,
        created__lte=now,
        created__gt=now - timedelta(days=EVENT_DAYS),
    )


def event_get(*, user: User, livemode: bool, event_id: str) -> Event:
    event = events_visible(user=user, livemode=livemode).filter(pk=event_id).first()
    if event is None:
        raise NotFound(f"No such event: '{event_id}'", param="id")
    return event


def _page(
    rows: QuerySet, *, noun: str, limit: int, starting_after: str | None, ending_before: str | None
) -> tuple[list, bool]:
    """Newest first with Stripe's cursors, as /v1/jobs pages."""
    cursor_id = starting_after or ending_before
    if cursor_id:
        cursor = rows.filter(pk=cursor_id).first()
        if cursor is None:
            param = "starting_after" if starting_after else "ending_before"
            raise InvalidParameter(f"No such {noun}: '{cursor_id}'", param=param)
        if starting_after:
            rows = rows.filter(
                Q(created__lt=cursor.created) | Q(created=cursor.created, pk__lt=cursor.pk)
            )
        else:
            rows = rows.filter(
                Q(created__gt=cursor.created) | Q(created=cursor.created, pk__gt=cursor.pk)
            ).order_by("created", "id")
    page = list(rows[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    if ending_before:
        page.reverse()
    return page, has_more


def event_list(
    *,
    user: User,
    livemode: bool,
    type: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[Event], bool]:
    events = events_visible(user=user, livemode=livemode).order_by("-created", "-id")
    if type:
        events = events.filter(type=type)
    return _page(
        events,
        noun="event",
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )


def endpoints_of(*, user: User, livemode: bool) -> QuerySet[WebhookEndpoint]:
    """The mode's registered endpoints (jobs' own webhook URLs are not among them)."""
    return WebhookEndpoint.objects.filter(user=user, livemode=livemode, job_id="").order_by(
        "-created", "-id"
    )


def endpoint_get(*, user: User, livemode: bool, endpoint_id: str) -> WebhookEndpoint:
    endpoint = endpoints_of(user=user, livemode=livemode).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="id")
    return endpoint


def endpoint_list(
    *,
    user: User,
    livemode: bool,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[WebhookEndpoint], bool]:
    return _page(
        endpoints_of(user=user, livemode=livemode),
        noun="webhook endpoint",
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )


def deliveries_recent(*, user: User, livemode: bool, limit: int = 50) -> list[Delivery]:
    """The mode's latest deliveries, jobs' own webhook URLs included, for the dashboard."""
    return list(
        Delivery.objects.filter(endpoint__user=user, endpoint__livemode=livemode)
        .select_related("event", "endpoint")
        .order_by("-created", "-id")[:limit]
    )


def delivery_get(*, user: User, delivery_id: int) -> Delivery:
    delivery = Delivery.objects.filter(endpoint__user=user, pk=delivery_id).first()
    if delivery is None:
        raise NotFound(f"No such delivery: '{delivery_id}'")
    return delivery
