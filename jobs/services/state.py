"""The transitions every stage shares. A run owns its job through a claim token; every write
after the claim is conditional on it, so a stale run can never finish a job twice."""

from __future__ import annotations

import secrets
from datetime import timedelta
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


def _enqueue(job_id: str) -> None:
    # The one seam where services reach the actors: by name, so that the actors may import
    # the services and nothing here imports them back (jobs.apps declares them at start-up).
    # The message goes to the queue of the job's engine: GPU workers take only neural jobs.
    tier = Job.objects.values_list("tier", flat=True).get(pk=job_id)
    broker = dramatiq.get_broker()
    message = broker.get_actor("run_job").message(job_id)
    broker.enqueue(message.copy(queue_name=queue_for(tier)))


def enqueue_on_commit(job_id: str) -> None:
    """Send the job once its row is committed. A broker outage is logged, not raised: the
    job is stored, and the sweep sends it again after BTRO_REQUEUE_SECONDS."""
    transaction.on_commit(lambda: _enqueue(job_id), robust=True)


def job_claim(*, job_id: str) -> Job | None:
    """Take the job for this run; a second delivery, or a finished job, gets None."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BTRO_STALE_JOB_SECONDS)
    claim = secrets.token_hex(16)
    taken = (
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, livemode=True)
        .filter(Q(claim="") | Q(heartbeat_at__lt=stale))
        .update(claim=claim, heartbeat_at=now, attempts=F("attempts") + 1)
    )
    return Job.objects.get(pk=job_id) if taken else None


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
