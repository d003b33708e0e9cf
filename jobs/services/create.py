"""Creating a job: check the upload, price it, store it, charge it and queue it, or, for a
test key, store it finished (jobs.testmode)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import credit_balance
from accounts.services import InsufficientCredits, credit_charge
from btro import outbound
from btro.errors import InvalidParameter, PaymentRequired, UploadTooLarge
from btro.metrics import JOBS_CREATED, JOBS_SUCCEEDED, count_on_commit
from webhooks.services import job_webhook_check, job_webhook_set

from .. import testmode
from ..engines import engine_name_for
from ..ids import job_id_new, random_token
from ..models import Job
from ..separation import TIER_STEMS, TIERS, AudioError
from ..separation.audio import FORMATS, AudioInfo, probe
from .events import job_event_record
from .metadata import metadata_checked
from .state import enqueue_on_commit


def job_cost(*, tier: str, duration: float) -> int:
    """Credits for a live job: the tier's price per started minute of audio."""
    return settings.BTRO_CREDITS_PER_MINUTE[tier] * max(1, math.ceil(duration / 60))


def _validate(*, tier: str | None, type: str, format: str) -> str:
    if type not in Job.Type.values:
        raise InvalidParameter(
            f"Invalid type '{type}'. Choose one of: {', '.join(Job.Type.values)}.", param="type"
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
    return tier


def check_file_url(value: object) -> None:
    """A URL the worker could fetch, checked for form only (btro.outbound.check_url): where
    it points (a private address?) is for the worker to check, as it resolves it."""
    if not isinstance(value, str):
        raise InvalidParameter("file_url must be a URL, not a file.", param="file_url")
    try:
        outbound.check_url(value)
    except outbound.AddressRefused as err:
        raise InvalidParameter(f"Invalid file_url: {err}", param="file_url") from None


def _validate_input(*, upload: UploadedFile | None, file_url: object) -> None:
    """Exactly one of `file` and `file_url`; the URL is only checked for form here, the
    worker fetches it (jobs.services.fetch)."""
    if upload is not None and file_url is not None:
        raise InvalidParameter("Send either 'file' or 'file_url', not both.", param="file_url")
    if upload is None and file_url is None:
        raise InvalidParameter(
            "Missing required parameter 'file' or 'file_url': send the audio as "
            "multipart/form-data, or its http(s) URL as file_url.",
            param="file",
        )
    if file_url is not None:
        check_file_url(file_url)
    elif upload is not None and (upload.size or 0) > settings.BTRO_MAX_UPLOAD_BYTES:
        raise UploadTooLarge()


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
    """A first, cheap look at the upload's header. The worker prices the job again by the
    audio it actually decodes (run.job_settle), so a header that lies gains nothing."""
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


def _clean_filename(name: str | None, default: str = "upload") -> str:
    name = os.path.basename((name or "").replace("\\", "/")).replace("\x00", "")
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[-200:] or default


def url_filename(url: str) -> str:
    """A file_url job's filename: the URL's last path segment, cleaned like an upload's."""
    return _clean_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), "download")


def job_create(
    *,
    user: User,
    livemode: bool,
    upload: UploadedFile | None,
    tier: str | None,
    type: str | None = None,
    format: str | None = None,
    metadata: dict[str, str] | None = None,
    file_url: object = None,
    webhook: str | None = None,
) -> Job:
    """Validate, then create a job: finished-in-2-s in test mode, queued work in live mode.
    The input is an upload or, with `file_url`, a URL the worker fetches. `webhook`: a URL
    that gets this job's events (and no other's)."""
    type = type or Job.Type.SPLITTER
    format = format or "wav"
    tier = _validate(tier=tier, type=type, format=format)
    metadata = metadata_checked(metadata or {})
    webhook = job_webhook_check(webhook) if webhook else None
    _validate_input(upload=upload, file_url=file_url)
    now = timezone.now()
    job = Job(
        id=job_id_new(livemode=livemode),
        user=user,
        livemode=livemode,
        type=type,
        tier=tier,
        format=format,
        created=now,
        download_token=random_token(32),
        metadata=metadata,
    )
    if upload is None:
        job.source_url = str(file_url)
        job.filename = url_filename(job.source_url)
        return _create_from_url(job, now=now, webhook=webhook)
    info = _probe_upload(upload)
    job.filename = _clean_filename(upload.name)
    job.input_bytes, job.duration = upload.size or 0, info.duration
    if not livemode:
        _store_test_job(job, now=now, webhook=webhook)
        return job

    job.cost = job_cost(tier=tier, duration=info.duration)
    job.input_name = default_storage.save(
        f"uploads/{job.id}/input{Path(job.filename).suffix.lower()[:8]}", upload
    )
    try:
        with transaction.atomic():
            credit_charge(user=user, amount=job.cost, job_id=job.id)
            job.enqueued_at = now
            job.save()
            _bind_webhook(job, webhook)
            enqueue_on_commit(job.id)
            _count_created(job)
    except InsufficientCredits as err:
        default_storage.delete(job.input_name)
        raise PaymentRequired(str(err)) from None
    except Exception:
        default_storage.delete(job.input_name)
        raise
    return job


def _create_from_url(job: Job, *, now: datetime, webhook: str | None) -> Job:
    """A job whose input the worker fetches. Nothing is charged now: the worker charges the
    audio it decodes (run.job_settle), so the balance need only cover the shortest job."""
    if not job.livemode:  # test mode never fetches
        _store_test_job(job, now=now, webhook=webhook)
        return job
    cheapest = job_cost(tier=job.tier, duration=0)
    balance = credit_balance(user=job.user)
    if balance < cheapest:
        raise PaymentRequired(
            f"A {job.tier} job costs at least {cheapest} credits and your balance is {balance}. "
            "Add credits, or use a test key (sk_test_…), which costs nothing."
        )
    with transaction.atomic():
        job.enqueued_at = now
        job.save()
        _bind_webhook(job, webhook)
        enqueue_on_commit(job.id)
        _count_created(job)
    return job


def _count_created(job: Job) -> None:
    engine = engine_name_for(job.tier) if job.livemode else "test"
    count_on_commit(JOBS_CREATED.labels(tier=job.tier, engine=engine).inc)
    if not job.livemode:  # stored finished at once
        count_on_commit(JOBS_SUCCEEDED.labels(tier=job.tier, engine=engine).inc)


def _bind_webhook(job: Job, webhook: str | None) -> None:
    """The job's own webhook URL, stored in the transaction that stores the job."""
    if webhook:
        job_webhook_set(user=job.user, livemode=job.livemode, job_id=job.id, url=webhook)


def _store_test_job(job: Job, *, now: datetime, webhook: str | None) -> None:
    """A test job, stored finished with its event, which is due at its completion 2 s on."""
    with transaction.atomic():
        testmode.finish_at_creation(job, now=now)
        _bind_webhook(job, webhook)
        job_event_record(job_id=job.id)
        _count_created(job)
