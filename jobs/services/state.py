"""The transitions every stage shares. A run owns its job through a claim token; every write
after the claim is conditional on it, so a stale run can never finish a job twice."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import credit_refund
from btro.metrics import JOBS_FAILED, JOBS_SUCCEEDED, count_on_commit

from ..engines import engine_name_for, queue_for
from ..models import Job
from ..paths import result_name as result_name  # where the stages find it
from .events import job_event_record


def _enqueue(job_id: str, *, delay: float = 0.0, held_by: str = "") -> None:
    # The one seam where services reach the actors: by name, so that the actors may import
    # the services and nothing here imports them back (jobs.apps declares them at start-up).
    # The message goes to the queue of the job's engine: GPU workers take only neural jobs.
    tier = Job.objects.values_list("tier", flat=True).get(pk=job_id)
    broker = dramatiq.get_broker()
    kwargs = {"held_by": held_by} if held_by else {}
    message = broker.get_actor("run_job").message_with_options(args=(job_id,), kwargs=kwargs)
    broker.enqueue(message.copy(queue_name=queue_for(tier)), delay=int(delay * 1000) or None)


def enqueue_on_commit(job_id: str, *, delay: float = 0.0, held_by: str = "") -> None:
    """Send the job once its row is committed (after `delay` seconds; `held_by`: the claim
    whose lease the message waits out, see job_resend_at_lapse). A broker outage is logged,
    not raised: the job is stored, and the sweep sends it again after BTRO_REQUEUE_SECONDS."""
    transaction.on_commit(lambda: _enqueue(job_id, delay=delay, held_by=held_by), robust=True)


# A message sent for a lease's lapse arrives this much later: the lease has surely lapsed.
LAPSE_MARGIN_SECONDS = 0.5


def lease_lapse(
    heartbeat_at: datetime | None,
    *,
    stale_seconds: float | None = None,
    now: datetime | None = None,
) -> datetime:
    """When a claim last renewed at `heartbeat_at` lapses: its worker is then taken for dead
    (`stale_seconds` after it, BTRO_STALE_JOB_SECONDS by default; never renewed: `now`)."""
    if heartbeat_at is None:
        return now or timezone.now()
    if stale_seconds is None:
        stale_seconds = settings.BTRO_STALE_JOB_SECONDS
    return heartbeat_at + timedelta(seconds=stale_seconds)


def job_claim(*, job_id: str) -> Job | None:
    """Take the job for this run; None while another run's lease holds it, once the job has
    ended, or once it used up its attempts (the sweep fails it then)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BTRO_STALE_JOB_SECONDS)
    claim = secrets.token_hex(16)
    taken = (
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, livemode=True)
        .filter(attempts__lt=settings.BTRO_JOB_MAX_ATTEMPTS)
        .filter(Q(claim="") | Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
        .update(claim=claim, heartbeat_at=now, attempts=F("attempts") + 1)
    )
    return Job.objects.get(pk=job_id) if taken else None


def job_resend_at_lapse(*, job_id: str, held_by: str = "") -> bool:
    """A delivery found the job held by another run's lease: send it again for when that
    lease lapses, so that a job whose worker was killed outright is taken over then (RabbitMQ
    redelivers its message at once). `held_by`: the claim this message already waited out;
    still renewed, that run is alive and the message ends here, so it is never bounced
    forever. True if sent."""
    job = (
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, livemode=True)
        .exclude(claim="")
        .only("claim", "heartbeat_at", "enqueued_at")
        .first()
    )
    if job is None:  # ended, or free but out of attempts: nothing to wait for
        return False
    lapse = lease_lapse(job.heartbeat_at)
    wait = (lapse - timezone.now()).total_seconds()
    if wait <= 0 or (job.claim == held_by and wait > 2 * LAPSE_MARGIN_SECONDS):
        return False  # lapsed yet not taken: out of attempts; or its run is alive
    return send_at_lapse(job, lapse)


def send_at_lapse(job: Job, lapse: datetime) -> bool:
    """Send `job` (its claim, heartbeat_at and enqueued_at read) for the lapse of its lease,
    once per lapse: its enqueued_at records it. False if sent already, or if the job changed
    since it was read."""
    if job.enqueued_at == lapse:
        return False
    marked = Job.objects.filter(pk=job.pk, claim=job.claim, heartbeat_at=job.heartbeat_at)
    if not marked.update(enqueued_at=lapse):
        return False
    wait = max(0.0, (lapse - timezone.now()).total_seconds())
    enqueue_on_commit(job.pk, delay=wait + LAPSE_MARGIN_SECONDS, held_by=job.claim)
    return True


def owned(job: Job) -> QuerySet[Job]:
    """The job, as long as this run still owns it."""
    return Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, claim=job.claim)


def job_heartbeat(*, job: Job, progress: float | None) -> bool:
    """Say this run is alive; False if it no longer owns the job (canceled, or taken over)."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if progress is not None:
        # A rerun after a crash starts from zero: the API never shows progress stepping back.
        fields["progress"] = Greatest(F("progress"), max(0, min(99, int(progress))))
    return bool(owned(job).update(**fields))


def job_owned(*, job: Job) -> bool:
    """Whether this run still owns the job: a read, for checks more frequent than heartbeats."""
    return owned(job).exists()


def finish(job: Job, *, guard: QuerySet[Job] | None = None, **fields: Any) -> bool:
    """End the job with `fields`, every ending goes through here, and write its event (the
    outbox) in the same transaction; False if `guard` (by default: the job as long as this
    run owns it) no longer matches it, so of two endings racing, exactly one wins."""
    now = timezone.now()
    with transaction.atomic():
        done = (owned(job) if guard is None else guard).update(
            completed_at=now,
            expires_at=now + timedelta(seconds=settings.BTRO_RESULT_TTL_SECONDS),
            claim="",
            **fields,
        )
        if done:
            job_event_record(job_id=job.pk)
            _count_ending(job, status=fields.get("status"), error_type=fields.get("error_type"))
    return bool(done)


def _count_ending(job: Job, *, status: str | None, error_type: str | None) -> None:
    labels = {"tier": job.tier, "engine": engine_name_for(job.tier)}
    if status == Job.Status.SUCCEEDED:
        count_on_commit(JOBS_SUCCEEDED.labels(**labels).inc)
    elif status == Job.Status.FAILED:
        count_on_commit(JOBS_FAILED.labels(**labels, error_type=error_type or "").inc)


def job_fail(
    *, job: Job, error_type: str, message: str, guard: QuerySet[Job] | None = None
) -> bool:
    """End the job failed and refund it; False if this run no longer owns it (or `guard`, as
    for finish, no longer matches it)."""
    with transaction.atomic():
        done = finish(
            job,
            guard=guard,
            status=Job.Status.FAILED,
            error_type=error_type,
            error_message=message,
            result=None,
        )
        if done:
            credit_refund(job_id=job.id)
    return done


def job_release(*, job: Job) -> None:
    """Give the job back to the queue after a transient error."""
    owned(job).update(claim="", heartbeat_at=None)


def job_hand_back(*, job: Job) -> bool:
    """Give the job back at once, its run cut short because its worker is stopping (a
    deploy): the claim released, the attempt not counted (the job did not fail), the job
    sent again now for another worker. False if this run no longer owned it."""
    with transaction.atomic():
        done = owned(job).update(
            claim="", heartbeat_at=None, attempts=F("attempts") - 1, enqueued_at=timezone.now()
        )
        if done:
            enqueue_on_commit(job.pk)
    return bool(done)
