"""Writes for jobs: creating them, the worker's side of a run, recovery and expiry."""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import InsufficientCredits, credit_charge, credit_refund, credit_settle
from btro.errors import InvalidParameter, PaymentRequired

from .engines import engine_name_for, engine_options
from .idempotency import idempotency_purge
from .ids import job_id_new, random_token
from .models import Job
from .samples import test_result
from .separation import TIER_STEMS, TIERS, AudioError, SeparationError
from .separation.audio import FORMATS, AudioInfo, probe
from .separation.runner import (
    ChildCrashed,
    Decoded,
    OverBudget,
    SeparationProcess,
    Task,
    TimedOut,
)
from .uploads import too_large

logger = logging.getLogger(__name__)
JOB_TYPES = ("splitter",)


def _enqueue(job_id: str) -> None:
    from .tasks import run_job

    run_job.send(job_id)


def _enqueue_on_commit(job_id: str) -> None:
    """Send the job once its row is committed. A broker outage is logged, not raised: the
    job is stored, and the sweep sends it again after BTRO_REQUEUE_SECONDS."""
    transaction.on_commit(lambda: _enqueue(job_id), robust=True)


def job_cost(*, tier: str, duration: float) -> int:
    """Credits for a live job: the tier's price per started minute of audio."""
    return settings.BTRO_CREDITS_PER_MINUTE[tier] * max(1, math.ceil(duration / 60))


def _validate(*, upload: UploadedFile | None, tier: str | None, type: str | None, format: str):
    if type not in JOB_TYPES:
        raise InvalidParameter(
            f"Invalid type '{type}'. The only supported type is 'splitter'.", param="type"
        )
    if not tier:
        raise InvalidParameter(
            f"Missing required parameter 'tier'. Choose one of: {', '.join(TIERS)}.", param="tier"
        )
    if tier not in TIER_STEMS:
        raise InvalidParameter(
            f"Invalid tier '{tier}'. Choose one of: {', '.join(TIERS)}.", param="tier"
        )
    if format not in FORMATS:
        raise InvalidParameter(
            f"Invalid format '{format}'. Choose one of: {', '.join(FORMATS)}.", param="format"
        )
    if upload is None:
        raise InvalidParameter(
            "Missing required parameter 'file': send the audio as multipart/form-data.",
            param="file",
        )
    if upload.size > settings.BTRO_MAX_UPLOAD_BYTES:
        raise too_large()


@contextmanager
def _local_copy(upload: UploadedFile) -> Iterator[str]:
    """A path to the upload on disk (small uploads live in memory)."""
    if hasattr(upload, "temporary_file_path"):
        yield upload.temporary_file_path()
        return
    with tempfile.NamedTemporaryFile(suffix=Path(upload.name or "").suffix) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        yield tmp.name


def _probe_upload(upload: UploadedFile) -> AudioInfo:
    try:
        with _local_copy(upload) as path:
            info = probe(path)
    except AudioError as err:
        raise InvalidParameter(str(err), param="file") from None
    finally:
        upload.seek(0)
    limit = settings.BTRO_MAX_DURATION_SECONDS
    if info.duration > limit:
        raise InvalidParameter(
            f"The audio lasts {info.duration / 60:.1f} minutes; the limit is {limit / 60:g}.",
            param="file",
        )
    # Decoded size, not length, is what costs memory: 20 min of 8-channel 192 kHz is 7 GB.
    if info.frames * info.channels > settings.BTRO_MAX_DECODED_SAMPLES:
        raise InvalidParameter(
            f"The audio is too large to separate: {info.channels} channels at "
            f"{info.sample_rate} Hz for {info.duration / 60:.1f} minutes. "
            "Send stereo at 44.1 or 48 kHz.",
            param="file",
        )
    return info


def _clean_filename(name: str | None) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).replace("\x00", "")
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[-200:] or "upload"


def job_create(
    *,
    api_key: ApiKey,
    upload: UploadedFile | None,
    tier: str | None,
    type: str | None = "splitter",
    format: str | None = None,
) -> Job:
    """Validate, then create a job: finished-in-2-s for test keys, queued work for live ones."""
    format = format or "wav"
    _validate(upload=upload, tier=tier, type=type, format=format)
    info = _probe_upload(upload)
    now = timezone.now()
    job = Job(
        id=job_id_new(livemode=api_key.livemode),
        user=api_key.user,
        livemode=api_key.livemode,
        type=type,
        tier=tier,
        filename=_clean_filename(upload.name),
        format=format,
        created=now,
        input_bytes=upload.size,
        duration=info.duration,
        download_token=random_token(32),
    )
    if not job.livemode:
        # Test mode: no engine, no credits, no queue; the fixed result is shown from +2 s.
        job.status = Job.SUCCEEDED
        job.progress = 100
        job.completed_at = now + timedelta(seconds=settings.BTRO_TEST_JOB_DELAY_SECONDS)
        job.expires_at = job.completed_at + timedelta(seconds=settings.BTRO_RESULT_TTL_SECONDS)
        job.result = test_result(tier)
        job.save()
        return job

    job.cost = job_cost(tier=tier, duration=info.duration)
    job.input_name = default_storage.save(
        f"uploads/{job.id}/input{Path(job.filename).suffix.lower()[:8]}", upload
    )
    try:
        with transaction.atomic():
            credit_charge(user=job.user, amount=job.cost, job_id=job.id)
            job.enqueued_at = now
            job.save()
            _enqueue_on_commit(job.id)
    except InsufficientCredits as err:
        default_storage.delete(job.input_name)
        raise PaymentRequired(str(err)) from None
    except Exception:
        default_storage.delete(job.input_name)
        raise
    return job


# The worker's side -------------------------------------------------------------------


def job_claim(*, job_id: str) -> Job | None:
    """Take the job for this run; a second delivery, or a finished job, gets None."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.BTRO_STALE_JOB_SECONDS)
    claim = secrets.token_hex(16)
    taken = (
        Job.objects.filter(pk=job_id, status=Job.QUEUED, livemode=True)
        .filter(Q(claim="") | Q(heartbeat_at__lt=stale))
        .update(claim=claim, heartbeat_at=now, attempts=F("attempts") + 1)
    )
    return Job.objects.get(pk=job_id) if taken else None


def _owned(job: Job):
    return Job.objects.filter(pk=job.pk, status=Job.QUEUED, claim=job.claim)


def job_heartbeat(*, job: Job, progress: float | None) -> None:
    fields: dict = {"heartbeat_at": timezone.now()}
    if progress is not None:
        # A rerun after a crash starts from zero: the API never shows progress stepping back.
        fields["progress"] = Greatest(F("progress"), max(0, min(99, int(progress))))
    _owned(job).update(**fields)


def _finish(job: Job, **fields) -> bool:
    now = timezone.now()
    return bool(
        _owned(job).update(
            completed_at=now,
            expires_at=now + timedelta(seconds=settings.BTRO_RESULT_TTL_SECONDS),
            claim="",
            **fields,
        )
    )


def job_fail(*, job: Job, error_type: str, message: str) -> bool:
    """End the job failed and refund it; False if this run no longer owns it."""
    with transaction.atomic():
        done = _finish(job, status=Job.FAILED, error_type=error_type, error_message=message)
        if done:
            credit_refund(job_id=job.id)
    return done


class JobUnpaid(Exception):
    """The audio decoded costs more than the job was charged and the balance covers."""


class JobLost(Exception):
    """This run no longer owns the job (the sweep gave it to another run)."""


def job_settle(*, job: Job, decoded: Decoded) -> None:
    """Charge the job for the audio actually decoded, not for what its header claimed:
    the difference either way goes in the ledger; JobUnpaid if the balance falls short."""
    seconds = decoded.seconds
    cost = job_cost(tier=job.tier, duration=seconds)
    with transaction.atomic():
        if not _owned(job).update(duration=seconds, cost=cost):
            raise JobLost(job.id)
        try:
            credit_settle(
                user=job.user,
                job_id=job.id,
                amount=cost,
                note=f"Job {job.id}: {seconds / 60:.1f} min of audio decoded",
            )
        except InsufficientCredits as err:
            raise JobUnpaid(
                f"The audio lasts {seconds:.0f} s once decoded, not the {job.duration:.0f} s "
                f"its header claimed: the job costs {cost} credits, {err.needed} more than "
                f"was charged, and the balance is {err.balance}."
            ) from None
    job.duration, job.cost = seconds, cost


def job_release(*, job: Job) -> None:
    """Give the job back to the queue after a transient error."""
    _owned(job).update(claim="", heartbeat_at=None)


def result_name(job: Job, stem: str) -> str:
    return f"results/{job.id}/{stem}.{job.format}"


@contextmanager
def _input_path(job: Job) -> Iterator[str]:
    try:
        yield default_storage.path(job.input_name)
    except NotImplementedError:  # remote storage: work on a local copy
        with tempfile.NamedTemporaryFile(suffix=Path(job.input_name).suffix) as tmp:
            with default_storage.open(job.input_name, "rb") as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
            tmp.flush()
            yield tmp.name


_local = threading.local()


def _separation_process() -> SeparationProcess:
    """One separation child per worker thread: tasks of two threads must never share a pipe."""
    if not hasattr(_local, "process"):
        _local.process = SeparationProcess()
    return _local.process


def job_run(*, job_id: str) -> None:
    """Run one job to its end. Transient errors are raised for the broker to retry."""
    job = job_claim(job_id=job_id)
    if job is None:
        return
    engine = engine_name_for(job.tier)
    last = {"progress": -1.0}

    def on_progress(progress: float | None) -> None:
        if progress is None or progress - last["progress"] >= 2:
            if progress is not None:
                last["progress"] = progress
            try:
                job_heartbeat(job=job, progress=progress)
            except DatabaseError:  # a database blip must not stop the separation
                logger.warning("job %s: heartbeat failed", job.id, exc_info=True)

    try:
        with tempfile.TemporaryDirectory() as out_dir, _input_path(job) as input_path:
            task = Task(
                input_path=input_path,
                tier=job.tier,
                engine=engine,
                out_dir=out_dir,
                format=job.format,
                engine_options=engine_options(engine),
                max_seconds=settings.BTRO_MAX_DURATION_SECONDS,
                max_samples=settings.BTRO_MAX_DECODED_SAMPLES,
                memory_mb=settings.BTRO_SEPARATION_MEMORY_MB,
            )
            outcome = _separation_process().run(
                task,
                timeout=settings.BTRO_JOB_TIME_LIMIT_SECONDS,
                on_progress=on_progress,
                on_decoded=lambda decoded: job_settle(job=job, decoded=decoded),
            )
            stems = {}
            for stem, info in outcome.stems.items():
                with open(info["path"], "rb") as fh:
                    name = result_name(job, stem)
                    default_storage.delete(name)  # a rerun overwrites, never renames
                    default_storage.save(name, File(fh))
                stems[stem] = {"bytes": info["bytes"], "duration": info["duration"]}
        result = {
            "engine": outcome.engine,
            "format": job.format,
            "sample_rate": outcome.sample_rate,
            "stems": stems,
        }
        if not _finish(job, status=Job.SUCCEEDED, progress=100, result=result):
            logger.warning("job %s: finished, but another run owns it now", job.id)
    except JobLost:
        logger.warning("job %s: taken over by another run before it was separated", job.id)
    except JobUnpaid as err:
        job_fail(job=job, error_type="insufficient_credits", message=str(err))
    except AudioError as err:
        job_fail(job=job, error_type="invalid_audio", message=str(err))
    except OverBudget as err:
        job_fail(job=job, error_type="out_of_memory", message=str(err))
    except TimedOut as err:
        job_fail(job=job, error_type="timeout", message=str(err))
    except ChildCrashed as err:
        _retry_or_fail(job, "engine_crashed", str(err), err)
    except SeparationError as err:
        job_fail(job=job, error_type="engine_error", message=str(err))
    except Exception as err:
        _retry_or_fail(job, "api_error", "An internal error stopped the job.", err)


def _retry_or_fail(job: Job, error_type: str, message: str, err: Exception) -> None:
    if job.attempts >= settings.BTRO_JOB_MAX_ATTEMPTS:
        job_fail(job=job, error_type=error_type, message=f"{message} (after {job.attempts} tries)")
        return
    job_release(job=job)
    raise err


# Recovery and expiry -------------------------------------------------------------------


def job_sweep(
    *, stale_seconds: float | None = None, requeue_seconds: float | None = None
) -> dict[str, int]:
    """Requeue jobs whose worker died or whose message was lost; purge expired results.

    A running job is dead after `stale_seconds` without a heartbeat; a queued one is resent
    after `requeue_seconds` untaken (both settings by default).
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "purged": 0}
    if stale_seconds is None:
        stale_seconds = settings.BTRO_STALE_JOB_SECONDS
    stale = now - timedelta(seconds=stale_seconds)
    dead = Job.objects.filter(livemode=True, status=Job.QUEUED).exclude(claim="")
    sent: set[str] = set()
    for job in dead.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)):
        if job.attempts >= settings.BTRO_JOB_MAX_ATTEMPTS:
            message = f"The job stopped its worker {job.attempts} times and was given up."
            counts["failed"] += job_fail(job=job, error_type="worker_lost", message=message)
        elif Job.objects.filter(pk=job.pk, claim=job.claim).update(claim="", enqueued_at=now):
            _enqueue_on_commit(job.pk)
            sent.add(job.pk)
    unsent = now - timedelta(
        seconds=settings.BTRO_REQUEUE_SECONDS if requeue_seconds is None else requeue_seconds
    )
    lost = Job.objects.filter(livemode=True, status=Job.QUEUED, claim="").exclude(pk__in=sent)
    for job in lost.filter(Q(enqueued_at__lte=unsent) | Q(enqueued_at__isnull=True)):
        if Job.objects.filter(pk=job.pk, claim="").update(enqueued_at=now):
            _enqueue_on_commit(job.pk)
            sent.add(job.pk)
    counts["requeued"] = len(sent)
    for job in Job.objects.filter(expires_at__lte=now, purged_at__isnull=True):
        job_purge(job=job)
        counts["purged"] += 1
    idempotency_purge()
    return counts


def job_purge(*, job: Job) -> None:
    """Delete an expired job's stored input and stems."""
    names = [job.input_name] if job.input_name else []
    names += [result_name(job, stem) for stem in (job.result or {}).get("stems", {})]
    for name in names:
        default_storage.delete(name)
    Job.objects.filter(pk=job.pk).update(purged_at=timezone.now())
