"""Ending a job on its owner's request: cancel (failed, `canceled`, refunded) and delete (its
files gone now, then 410). Both end the job through `state.finish`, guarded by a conditional
UPDATE, so a cancel racing a worker's own ending loses or wins whole: never both."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from btro.errors import JobEnded

from ..models import Job
from ..selectors import job_deleted_error
from .state import job_fail
from .sweep import job_purge

CANCELED = "canceled"


def _still_queued(job: Job) -> QuerySet[Job]:
    """The job while the API still shows it queued: a live job not yet ended, whatever run
    holds it; a test job before its stored ending (2 s after creation) comes due."""
    jobs = Job.objects.filter(pk=job.pk, deleted_at__isnull=True)
    if job.livemode:
        return jobs.filter(status=Job.Status.QUEUED)
    return jobs.filter(completed_at__gt=timezone.now())


def job_cancel(*, job: Job) -> Job:
    """End a queued or running job `failed` with error `canceled` and refund it.

    A queued job is never claimed afterwards; a running one's worker learns at its next check
    (BTRO_CANCEL_CHECK_SECONDS) that it no longer owns the job and kills its separation child.
    Canceling a canceled job answers it again; any other ended job is a JobEnded (400).
    """
    job_fail(
        job=job,
        error_type=CANCELED,
        message="The job was canceled at your request; its credits were refunded.",
        guard=_still_queued(job),
    )
    job.refresh_from_db()
    if job.status == Job.Status.FAILED and job.error_type == CANCELED:
        return job
    ended = "succeeded" if job.status == Job.Status.SUCCEEDED else f"failed ({job.error_type})"
    raise JobEnded(f"Job '{job.id}' has already ended ({ended}): it cannot be canceled.")


def job_delete(*, job: Job) -> None:
    """Cancel the job if it is still queued or running, then delete its upload and stems
    from storage now; the job answers 410 from then on.

    The cancel comes first: a worker that stores stems after it finds the job failed when it
    tries to end it, and deletes what it stored (`job_run`).
    """
    if _still_queued(job).exists():
        try:
            job_cancel(job=job)
        except JobEnded:  # it ended on its own meanwhile: delete it as it is
            pass
    # Of two DELETEs racing, the one whose UPDATE marks the job answers it; the other a 410.
    if not Job.objects.filter(pk=job.pk, deleted_at__isnull=True).update(deleted_at=timezone.now()):
        raise job_deleted_error(job.pk)
    job.refresh_from_db()
    job_purge(job=job)
