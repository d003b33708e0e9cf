"""A job's ending, told to webhooks: its event written in the transaction that ends it."""

from __future__ import annotations

from webhooks.services import event_record

from ..models import Job
from ..representation import job_object
from ..selectors import job_view

EVENT_TYPE = {Job.Status.SUCCEEDED: "job.succeeded", Job.Status.FAILED: "job.failed"}


def job_event_record(*, job_id: str) -> None:
    """Write the event of a job that has just ended (or, for a test job, will end at its
    completed_at): the job as the API shows it from that moment."""
    job = Job.objects.get(pk=job_id)
    assert job.completed_at is not None, f"job {job_id} has not ended"
    event_record(
        user_id=job.user_id,
        livemode=job.livemode,
        type=EVENT_TYPE[Job.Status(job.status)],
        job=job_object(job_view(job=job, now=job.completed_at)),
        at=job.completed_at,
    )
