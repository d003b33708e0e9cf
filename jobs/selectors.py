"""Reads for jobs: lookups scoped to the caller, the list cursor, and what a job shows now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import CreditEntry, User
from btro.errors import Gone, InvalidParameter, NotFound

from . import testmode
from .engines import SEPARATION_QUEUES, queue_for
from .models import Job


@dataclass(frozen=True)
class JobView:
    """A job as the API shows it at one instant (test jobs finish 2 s after creation)."""

    job: Job
    status: str
    progress: int
    completed_at: datetime | None
    expires_at: datetime | None
    result: dict | None
    error: dict | None


def job_view(*, job: Job, now: datetime | None = None) -> JobView:
    now = now or timezone.now()
    if job.completed_at is None or now < job.completed_at:
        progress = testmode.progress_shown(job)
        return JobView(job, Job.Status.QUEUED, progress, None, None, None, None)
    error = {"type": job.error_type, "message": job.error_message} if job.error_type else None
    result = job.result if job.status == Job.Status.SUCCEEDED else None
    return JobView(job, job.status, 100, job.completed_at, job.expires_at, result, error)


def job_is_expired(*, job: Job, now: datetime | None = None) -> bool:
    return job.expires_at is not None and (now or timezone.now()) >= job.expires_at


def _owned(*, user: User, livemode: bool):
    return Job.objects.filter(user=user, livemode=livemode)


def job_deleted_error(job_id: str) -> Gone:
    return Gone(f"Job '{job_id}' was deleted at your request, with its files.", param="id")


def job_get(*, user: User, livemode: bool, job_id: str) -> Job:
    """The caller's job; another account's or mode's is indistinguishable from none."""
    # Every poll runs this: written out, the query costs no ORM compilation (measured by
    # bench.scale, about a fifth of a poll's time on the web tier).
    table = Job._meta.db_table
    sql = f"SELECT * FROM {table} WHERE id = %s AND user_id = %s AND livemode = %s"  # noqa: S608
    job = next(iter(Job.objects.raw(sql, [job_id, user.pk, livemode])), None)
    if job is None:
        raise NotFound(f"No such job: '{job_id}'", param="id")
    if job.deleted_at is not None:
        raise job_deleted_error(job_id)
    if job_is_expired(job=job):
        raise Gone(
            f"Job '{job_id}' has expired: results are kept for 1 hour after completion.",
            param="id",
        )
    return job


def job_get_for_owner(*, user: User, job_id: str) -> Job:
    """The user's job in either mode, expired or not (the dashboard shows both modes)."""
    job = Job.objects.filter(user=user, pk=job_id).first()
    if job is None:
        raise NotFound(f"No such job: '{job_id}'", param="id")
    return job


def job_list(
    *,
    user: User,
    livemode: bool,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    status: str | None = None,
    tier: str | None = None,
    created_gte: datetime | None = None,
    created_lt: datetime | None = None,
    now: datetime | None = None,
) -> tuple[list[Job], bool]:
    """Newest first, Stripe-style cursors over job_search's filters; expired and deleted jobs
    are gone from the list too. A cursor is any listed job of the caller's, matching the
    filters or not."""
    now = now or timezone.now()
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    jobs = job_search(
        user=user,
        livemode=livemode,
        status=status,
        tier=tier,
        created_gte=created_gte,
        created_lt=created_lt,
        now=now,
    ).filter(unexpired)
    cursor_id = starting_after or ending_before
    if cursor_id:
        cursor = _owned(user=user, livemode=livemode).filter(unexpired, pk=cursor_id).first()
        if cursor is None:
            param = "starting_after" if starting_after else "ending_before"
            raise InvalidParameter(f"No such job: '{cursor_id}'", param=param)
        if starting_after:
            jobs = jobs.filter(
                Q(created__lt=cursor.created) | Q(created=cursor.created, pk__lt=cursor.pk)
            )
        else:
            jobs = jobs.filter(
                Q(created__gt=cursor.created) | Q(created=cursor.created, pk__gt=cursor.pk)
            ).order_by("created", "id")
    page = list(jobs[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    if ending_before:
        page.reverse()
    return page, has_more


def job_search(
    *,
    user: User,
    livemode: bool | None = None,
    status: str | None = None,
    tier: str | None = None,
    created_gte: datetime | None = None,
    created_lt: datetime | None = None,
    metadata_key: str | None = None,
    metadata_value: str | None = None,
    now: datetime | None = None,
) -> QuerySet[Job]:
    """The user's jobs, newest first, filtered by mode, tier, creation time, a metadata key
    (and its value) and the status the API shows now: the API's list and the dashboard's.

    A test job is stored finished but reads `queued` until `completed_at`, so the status
    filter looks at `completed_at` as job_view does.
    """
    now = now or timezone.now()
    jobs = Job.objects.filter(user=user, deleted_at__isnull=True)
    if livemode is not None:
        jobs = jobs.filter(livemode=livemode)
    if tier:
        jobs = jobs.filter(tier=tier)
    if created_gte is not None:
        jobs = jobs.filter(created__gte=created_gte)
    if created_lt is not None:
        jobs = jobs.filter(created__lt=created_lt)
    if metadata_key:
        # A transform, not `metadata__<key>`: a key holding `__` is a key, not a path.
        jobs = jobs.filter(metadata__has_key=metadata_key)
        if metadata_value is not None:
            jobs = jobs.alias(meta=KeyTransform(metadata_key, "metadata")).filter(
                meta=metadata_value
            )
    finished = Q(completed_at__isnull=False, completed_at__lte=now)
    if status == Job.Status.QUEUED:
        jobs = jobs.exclude(finished)
    elif status in (Job.Status.SUCCEEDED, Job.Status.FAILED):
        jobs = jobs.filter(finished, status=status)
    return jobs.order_by("-created", "-id")


def _created_between(*, user: User, livemode: bool, since: datetime, until: datetime | None):
    jobs = Job.objects.filter(user=user, livemode=livemode, created__gte=since)
    return jobs if until is None else jobs.filter(created__lt=until)


def job_minutes_by_day(
    *, user: User, livemode: bool, since: datetime, until: datetime | None = None
) -> dict[tuple[date, str], float]:
    """Minutes of audio per (UTC day, tier) for jobs created since `since` (and before
    `until`); failed jobs are refunded, so they do not count."""
    rows = (
        _created_between(user=user, livemode=livemode, since=since, until=until)
        .exclude(status=Job.Status.FAILED)
        .annotate(day=TruncDate("created"))
        .values("day", "tier")
        .annotate(seconds=Sum("duration"))
    )
    return {(row["day"], row["tier"]): (row["seconds"] or 0) / 60 for row in rows}


def job_credits_by_day(
    *, user: User, livemode: bool, since: datetime, until: datetime | None = None
) -> dict[tuple[date, str], int]:
    """Credits the ledger holds per (UTC day, tier) for the jobs created that day: cost +
    adjustment − refund, whenever those entries were written. Test jobs are free: 0."""
    charged = (
        CreditEntry.objects.filter(user=user, job_id=OuterRef("pk"))
        .values("job_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        _created_between(user=user, livemode=livemode, since=since, until=until)
        .annotate(day=TruncDate("created"), charged=Coalesce(Subquery(charged), 0))
        .values("day", "tier")
        .annotate(credits=Sum("charged"))
    )
    return {(row["day"], row["tier"]): -(row["credits"] or 0) for row in rows}


@dataclass
class QueueState:
    """A separation queue now: live jobs waiting (no run holds them), the oldest's wait, and
    jobs a run holds."""

    waiting: int = 0
    oldest_enqueued_at: datetime | None = None
    running: int = 0


def queue_states() -> dict[str, QueueState]:
    """Every separation queue's state, read from the jobs (the broker's own count does not
    see a lost message, and each broker counts differently)."""
    states = {queue: QueueState() for queue in SEPARATION_QUEUES}
    waiting = Q(claim="")
    rows = (
        Job.objects.filter(status=Job.Status.QUEUED, livemode=True)
        .order_by()
        .values("tier")
        .annotate(
            waiting=Count("id", filter=waiting),
            running=Count("id", filter=~waiting),
            oldest=Min("enqueued_at", filter=waiting),
        )
    )
    for row in rows:
        state = states.setdefault(queue_for(row["tier"]), QueueState())
        state.waiting += row["waiting"]
        state.running += row["running"]
        oldest = row["oldest"]
        if oldest is not None:
            if state.oldest_enqueued_at is None or oldest < state.oldest_enqueued_at:
                state.oldest_enqueued_at = oldest
    return states
