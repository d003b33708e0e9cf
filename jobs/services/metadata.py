"""A job's metadata: the caller's own key/value pairs (Stripe's limits), set at creation and
changed later with POST /v1/jobs/:id."""

from __future__ import annotations

from django.db import transaction

from btro.errors import InvalidParameter

from ..models import Job

METADATA_MAX_KEYS = 20
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def metadata_checked(metadata: dict[str, str]) -> dict[str, str]:
    """The metadata as stored, or a 400 naming the first pair over a limit."""
    for key, value in metadata.items():
        param = f"metadata[{key[:METADATA_MAX_KEY_LENGTH]}]"
        if not key:
            raise InvalidParameter("A metadata key cannot be empty.", param="metadata[]")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise InvalidParameter(
                f"Metadata keys can be at most {METADATA_MAX_KEY_LENGTH} characters long; "
                f"this one has {len(key)}.",
                param=param,
            )
        if not isinstance(value, str):
            raise InvalidParameter("A metadata value must be a string, not a file.", param=param)
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise InvalidParameter(
                f"Metadata values can be at most {METADATA_MAX_VALUE_LENGTH} characters long; "
                f"this one has {len(value)}.",
                param=param,
            )
        if "\x00" in key or "\x00" in value:  # PostgreSQL's JSON cannot hold it
            raise InvalidParameter("Metadata cannot hold a NUL character.", param=param)
    if len(metadata) > METADATA_MAX_KEYS:
        raise InvalidParameter(
            f"A job can have at most {METADATA_MAX_KEYS} metadata keys; this would make "
            f"{len(metadata)}.",
            param="metadata",
        )
    return dict(metadata)


def job_metadata_update(*, job: Job, changes: dict[str, str], clear: bool = False) -> Job:
    """Merge `changes` into the job's metadata: an empty value removes its key, and `clear`
    removes every key first. Row-locked, so two updates of different keys both count."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        merged = {} if clear else dict(locked.metadata or {})
        for key, value in changes.items():
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
        checked = metadata_checked(merged)
        Job.objects.filter(pk=job.pk).update(metadata=checked)
    job.metadata = checked
    return job
