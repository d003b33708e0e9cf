"""Where a job's files are kept in storage (a module of its own: test mode, the stages and the
event of a job's end all need it, and it needs nothing of them)."""

from __future__ import annotations

from .models import Job


def result_name(job: Job, stem: str) -> str:
    """Where a live job's stem is kept in storage."""
    return f"results/{job.id}/{stem}.{job.format}"
