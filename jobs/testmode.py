"""Test mode, in one place: the other modules ask here instead of branching on `livemode`.

A test key's job touches no engine, no credits and no queue. It is stored finished, with a
fixed result per tier whose URLs serve the playable samples in jobs/samples/, and the API
shows it `queued` (with no progress) until BTRO_TEST_JOB_DELAY_SECONDS after its creation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

import soundfile as sf
from django.conf import settings
from django.core.files.storage import default_storage

from .models import Job
from .paths import result_name
from .samples import SAMPLE_DIR
from .separation import TIER_STEMS


def sample_path(stem: str) -> Path:
    return SAMPLE_DIR / f"{stem}.wav"


@cache
def test_result(tier: str) -> dict[str, Any]:
    """The result every test job of this tier returns; URLs are added per job when shown."""
    stems = {}
    sample_rate = 0
    for stem in TIER_STEMS[tier]:
        info = sf.info(sample_path(stem))
        sample_rate = info.samplerate
        stems[stem] = {
            "bytes": sample_path(stem).stat().st_size,
            "duration": round(info.frames / info.samplerate, 3),
        }
    return {"engine": "test", "format": "wav", "sample_rate": sample_rate, "stems": stems}


def finish_at_creation(job: Job, *, now: datetime) -> None:
    """Store a test job finished, with its fixed result, completing a moment from now."""
    job.status = Job.Status.SUCCEEDED
    job.progress = 100
    job.completed_at = now + timedelta(seconds=settings.BTRO_TEST_JOB_DELAY_SECONDS)
    job.expires_at = job.completed_at + timedelta(seconds=settings.BTRO_RESULT_TTL_SECONDS)
    job.result = test_result(job.tier)
    job.save()


def progress_shown(job: Job) -> int:
    """A job's progress while it reads `queued`: a test job shows none before it ends."""
    return job.progress if job.livemode else 0


def open_stem(job: Job, stem: str) -> IO[bytes]:
    """A finished job's stem: from storage for a live job, the sample for a test job."""
    if job.livemode:
        return default_storage.open(result_name(job, stem), "rb")
    return open(sample_path(stem), "rb")


def stem_signed_url(job: Job, stem: str, *, content_type: str, disposition: str) -> str | None:
    """A short-lived signed URL of a live job's stem in remote storage (S3), for the client
    to fetch it there; None where the bytes are served here (local files, the samples)."""
    name = result_name(job, stem)
    if not job.livemode:
        return None
    try:
        default_storage.path(name)
        return None
    except NotImplementedError:  # no local path: a bucket, whose url() signs
        pass
    remote: Any = default_storage  # django-storages' S3Storage.url takes response overrides
    params = {"ResponseContentType": content_type, "ResponseContentDisposition": disposition}
    return str(remote.url(name, parameters=params))


def stem_size(job: Job, stem: str) -> int:
    if job.livemode:
        return default_storage.size(result_name(job, stem))
    return sample_path(stem).stat().st_size
