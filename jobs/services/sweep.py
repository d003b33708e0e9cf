"""Recovery and expiry, run every BTRO_SWEEP_INTERVAL_SECONDS by the scheduler (or by the
embedded server): requeue jobs whose worker died or whose message was lost, give up jobs that
keep killing their worker, resend webhook deliveries no worker took, delete expired files and
old idempotency records."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from webhooks.services import delivery_sweep

from ..models import IdempotencyRecord, Job
from ..separation import TIER_STEMS
from .state import enqueue_on_commit, job_fail, lease_lapse, result_name, send_at_lapse


def job_sweep(
    *, stale_seconds: float | None = None, requeue_seconds: float | None = None
) -> dict[str, int]:
    """Requeue jobs whose worker died or whose message was lost; purge expired results.

    A running job's worker is dead once its lease lapses, `stale_seconds` after its last
    heartbeat; a queued job is resent after `requeue_seconds` untaken (both settings by
    default). A lease that lapses before the next sweep gets a message for its lapse, so the
    job is taken over then, not up to a sweep interval later. Each job is sent once.
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "purged": 0}
    if stale_seconds is None:
        stale_seconds = settings.BTRO_STALE_JOB_SECONDS
    requeue = settings.BTRO_REQUEUE_SECONDS if requeue_seconds is None else requeue_seconds
    soon = now + timedelta(seconds=settings.BTRO_SWEEP_INTERVAL_SECONDS)
    claimed = Job.objects.filter(livemode=True, status=Job.Status.QUEUED).exclude(claim="")
    lapsing = Q(heartbeat_at__lt=soon - timedelta(seconds=stale_seconds))
    sent: set[str] = set()
    for job in claimed.filter(lapsing | Q(heartbeat_at__isnull=True)):
        lapse = lease_lapse(job.heartbeat_at, stale_seconds=stale_seconds, now=now)
        if job.attempts >= settings.BTRO_JOB_MAX_ATTEMPTS:
            if lapse <= now:
                message = f"The job stopped its worker {job.attempts} times and was given up."
                counts["failed"] += job_fail(job=job, error_type="worker_lost", message=message)
            continue
        # enqueued_at == lapse: a message was sent for this lapse (and is not lost yet).
        sent_at = job.enqueued_at
        if sent_at == lapse and lapse > now - timedelta(seconds=requeue):
            continue
        if lapse > now:  # lapses before the next sweep: a message for then, its claim kept
            if send_at_lapse(job, lapse):
                sent.add(job.pk)
        elif Job.objects.filter(pk=job.pk, claim=job.claim, heartbeat_at=job.heartbeat_at).update(
            claim="", enqueued_at=now
        ):
            enqueue_on_commit(job.pk)
            sent.add(job.pk)
    unsent = now - timedelta(seconds=requeue)
    lost = Job.objects.filter(livemode=True, status=Job.Status.QUEUED, claim="")
    for job in lost.exclude(pk__in=sent).filter(
        Q(enqueued_at__lte=unsent) | Q(enqueued_at__isnull=True)
    ):
        if Job.objects.filter(pk=job.pk, claim="").update(enqueued_at=now):
            enqueue_on_commit(job.pk)
            sent.add(job.pk)
    counts["requeued"] = len(sent)
    for job in Job.objects.filter(expires_at__lte=now, purged_at__isnull=True):
        job_purge(job=job)
        counts["purged"] += 1
    IdempotencyRecord.objects.filter(created__lte=now - IdempotencyRecord.TTL).delete()
    # Webhook deliveries no worker took (a lost message, a worker killed after the job's
    # last transition) go out again, on the same clock as lost jobs.
    counts["webhooks_resent"] = delivery_sweep(resend_seconds=requeue_seconds)
    return counts


def job_purge(*, job: Job) -> None:
    """Delete an expired (or deleted) job's stored input and stems: every stem its tier may
    have stored, whether or not the job ended with them."""
    names = [job.input_name] if job.input_name else []
    stems = TIER_STEMS.get(job.tier, ()) if job.livemode else ()
    names += [result_name(job, stem) for stem in stems]
    for name in names:
        default_storage.delete(name)
    Job.objects.filter(pk=job.pk).update(purged_at=timezone.now())
