"""The worker's side of a job: claim it, fetch a file_url job's input, separate it in the child
process, settle its cost by the audio decoded, store its stems. Transient errors are raised
for the broker to retry."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction

from accounts.services import InsufficientCredits, credit_settle
from btro.metrics import AUDIO_SECONDS, SEPARATION_SECONDS

from ..engines import engine_memory_mb, engine_name_for, engine_options
from ..models import Job
from ..separation import AudioError, SeparationError
from ..separation.runner import (
    ChildCrashed,
    Decoded,
    OverBudget,
    SeparationProcess,
    Task,
    TimedOut,
)
from .create import job_cost
from .fetch import FetchFailed, job_fetch_input
from .state import (
    finish,
    job_claim,
    job_fail,
    job_hand_back,
    job_heartbeat,
    job_owned,
    job_release,
    job_resend_at_lapse,
    owned,
    result_name,
)

logger = logging.getLogger(__name__)


class JobUnpaid(Exception):
    """The audio decoded costs more than the job was charged and the balance covers."""


class JobLost(Exception):
    """This run no longer owns the job (the sweep gave it to another run)."""


class WorkerStopping(Exception):
    """The worker was told to stop and the job in hand ran past BTRO_SHUTDOWN_GRACE_SECONDS."""


_stopping: dict[str, float | None] = {"since": None}


def worker_stopping(stopping: bool) -> None:
    """This worker process was told to stop (SIGTERM: a deploy), or (False) starts afresh.
    A run in hand gets BTRO_SHUTDOWN_GRACE_SECONDS to finish, then hands its job back."""
    if not stopping:
        _stopping["since"] = None
    elif _stopping["since"] is None:  # a process with two workers stops them one by one
        _stopping["since"] = time.monotonic()


def _past_grace() -> bool:
    since = _stopping["since"]
    return since is not None and time.monotonic() - since >= settings.BTRO_SHUTDOWN_GRACE_SECONDS


@contextmanager
def _heartbeat(job: Job) -> Iterator[None]:
    """Renew the run's lease every BTRO_HEARTBEAT_SECONDS from a thread of its own, whatever
    the run is doing (fetching, separating, reading or storing files): the lease lapses only
    when the worker dies. The thread is not waited for: a beat it writes late is harmless."""
    done = threading.Event()

    def beat() -> None:
        try:
            while not done.wait(settings.BTRO_HEARTBEAT_SECONDS):
                try:
                    if not job_heartbeat(job=job, progress=None):
                        return  # ended, canceled or taken over: the run finds out itself
                except Exception:  # a database blip: the next beat may pass
                    logger.warning("job %s: heartbeat failed", job.id, exc_info=True)
        finally:
            connection.close()

    threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def job_settle(*, job: Job, decoded: Decoded) -> None:
    """Charge the job for the audio actually decoded, not for what its header claimed:
    the difference either way goes in the ledger; JobUnpaid if the balance falls short."""
    seconds = decoded.seconds
    cost = job_cost(tier=job.tier, duration=seconds)
    with transaction.atomic():
        if not owned(job).update(duration=seconds, cost=cost):
            raise JobLost(job.id)
        try:
            credit_settle(
                user=job.user,
                job_id=job.id,
                amount=cost,
                note=f"Job {job.id}: {seconds / 60:.1f} min of audio decoded",
            )
        except InsufficientCredits as err:
            if err.needed == cost:  # nothing charged before: a file_url job
                raise JobUnpaid(
                    f"The audio lasts {seconds:.0f} s: the job costs {cost} credits and the "
                    f"balance is {err.balance}. Nothing was charged."
                ) from None
            raise JobUnpaid(
                f"The audio lasts {seconds:.0f} s once decoded, not the {job.duration:.0f} s "
                f"its header claimed: the job costs {cost} credits, {err.needed} more than "
                f"was charged, and the balance is {err.balance}."
            ) from None
    job.duration, job.cost = seconds, cost


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


def job_run(*, job_id: str, held_by: str = "") -> None:
    """Run one job to its end. Transient errors are raised for the broker to retry. A job
    another run's lease holds is sent again for the lease's lapse (job_resend_at_lapse)."""
    job = job_claim(job_id=job_id)
    if job is None:
        job_resend_at_lapse(job_id=job_id, held_by=held_by)
        return
    with _heartbeat(job):
        _run(job)


def _run(job: Job) -> None:
    engine = engine_name_for(job.tier)
    started = time.monotonic()
    last = {"progress": -1.0, "check": time.monotonic()}

    def on_progress(progress: float | None) -> None:
        """Record every 2 % of progress, and check in between that the job is still ours:
        raising JobLost kills the separation child (a cancel), as does WorkerStopping once
        the worker's shutdown grace is over."""
        if _past_grace():
            raise WorkerStopping(job.id)
        now = time.monotonic()
        moved = progress is not None and progress - last["progress"] >= 2
        try:
            if moved:
                last["progress"] = max(last["progress"], progress or 0)
                last["check"] = now
                ours = job_heartbeat(job=job, progress=progress)
            elif now - last["check"] >= settings.BTRO_CANCEL_CHECK_SECONDS:
                last["check"] = now
                ours = job_owned(job=job)
            else:
                return
        except DatabaseError:  # a database blip must not stop the separation
            logger.warning("job %s: heartbeat failed", job.id, exc_info=True)
            return
        if not ours:
            raise JobLost(job.id)

    try:
        if job.source_url and not job.input_name:  # a file_url job, not fetched yet
            if not job_fetch_input(job=job, on_heartbeat=lambda: on_progress(None)):
                raise JobLost(job.id)
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
                memory_mb=engine_memory_mb(engine),
            )
            outcome = _separation_process().run(
                task,
                timeout=settings.BTRO_JOB_TIME_LIMIT_SECONDS,
                on_progress=on_progress,
                on_decoded=lambda decoded: job_settle(job=job, decoded=decoded),
                beat_seconds=settings.BTRO_CANCEL_CHECK_SECONDS,
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
        if finish(job, status=Job.Status.SUCCEEDED, progress=100, result=result):
            SEPARATION_SECONDS.labels(engine=engine, tier=job.tier).observe(
                time.monotonic() - started
            )
            AUDIO_SECONDS.labels(engine=engine, tier=job.tier).observe(job.duration or 0)
        else:
            # Canceled (or deleted) while the stems were stored: they must not outlive it. A
            # job another run took over keeps them: that run writes the same names.
            if Job.objects.filter(pk=job.pk, status=Job.Status.FAILED).exists():
                for stem in stems:
                    default_storage.delete(result_name(job, stem))
            logger.warning("job %s: finished, but it was canceled or another run owns it", job.id)
    except JobLost:
        logger.warning("job %s: canceled, or taken over by another run, mid-separation", job.id)
    except WorkerStopping:
        logger.warning("job %s: handed back, its worker stopping past the grace period", job.id)
        job_hand_back(job=job)
    except FetchFailed as err:
        if err.transient:
            _retry_or_fail(job, "fetch_error", str(err), err)
        else:
            job_fail(job=job, error_type="fetch_error", message=str(err))
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
        logger.error("job %s: given up after %s tries", job.id, job.attempts, exc_info=err)
        job_fail(job=job, error_type=error_type, message=f"{message} (after {job.attempts} tries)")
        return
    job_release(job=job)
    raise err
