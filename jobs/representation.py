"""The Job object as the API shows it: one function for the API's answers and for the job
inside a webhook event, which is built outside any request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from .models import Job
from .selectors import JobView, job_view
from .separation import TIER_STEMS


def timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def public_url(path: str) -> str:
    """An absolute URL outside a request: BTRO_PUBLIC_URL + path."""
    return settings.BTRO_PUBLIC_URL + path


def stem_path(job: Job, stem: str, fmt: str) -> str:
    return reverse("jobs:download", args=[job.id, job.download_token, f"{stem}.{fmt}"])


def job_object(instance: Job | JobView, *, absolute: Callable[[str], str] = public_url) -> dict:
    """The job's API representation; `absolute` turns a stem's path into its URL."""
    view = instance if isinstance(instance, JobView) else job_view(job=instance)
    job = view.job
    result = None
    if view.result is not None:
        fmt = view.result["format"]
        stems = view.result["stems"]
        result = {
            **view.result,
            # In the tier's order: JSON columns may not keep key order.
            "stems": {
                stem: {"url": absolute(stem_path(job, stem, fmt)), **stems[stem]}
                for stem in TIER_STEMS[job.tier]
                if stem in stems
            },
        }
    return {
        "id": job.id,
        "object": "job",
        "livemode": job.livemode,
        "type": job.type,
        "status": view.status,
        "tier": job.tier,
        "filename": job.filename,
        "created": timestamp(job.created),
        "completed_at": timestamp(view.completed_at),
        "expires_at": timestamp(view.expires_at),
        "progress": view.progress,
        "error": view.error,
        "result": result,
        "metadata": job.metadata or {},
    }
