"""A file_url job's first stage, in the worker: download the URL into storage where uploads go,
through the outbound guard (btro.outbound: http(s), public addresses only, each redirect
checked again), within the upload size limit and the fetch time limit. The job stays queued
meanwhile; once the input is stored, a retry separates it without fetching it again."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from btro import outbound

from ..models import Job
from ..separation import AudioError
from ..separation.audio import probe
from .state import owned

MAX_REDIRECTS = 3
READ_TIMEOUT_SECONDS = 30.0  # a server silent this long is given up, within the time limit


class FetchFailed(Exception):
    """The input could not be fetched; str() says why, for the job's error.message.

    `transient`: the URL's server failed (a 5xx, a 429, a broken connection) and another try
    may well succeed, so the job is retried like an engine crash, up to BTRO_JOB_MAX_ATTEMPTS.
    Everything else (4xx, refused address, too large, not audio, the time limit) would end
    the same way again, or cost another whole time limit: the job fails at once."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit / 2**10:g} KB"


def _too_large() -> FetchFailed:
    limit = settings.BTRO_MAX_UPLOAD_BYTES
    return FetchFailed(f"The file at file_url is larger than the {_size(limit)} upload limit.")


def _download(
    url: str, out: IO[bytes], *, deadline: float, on_heartbeat: Callable[[], None]
) -> str:
    """Stream the URL's body into `out`; its Content-Type."""
    limit = settings.BTRO_MAX_UPLOAD_BYTES
    with outbound.request(
        "GET",
        url,
        allow_private=settings.BTRO_FETCH_ALLOW_PRIVATE,
        timeout=READ_TIMEOUT_SECONDS,
        max_redirects=MAX_REDIRECTS,
        deadline=deadline,
    ) as response:
        if not 200 <= response.status < 300:
            try:
                phrase = f" {HTTPStatus(response.status).phrase}"
            except ValueError:
                phrase = ""
            raise FetchFailed(
                f"The server of file_url answered HTTP {response.status}{phrase}.",
                transient=response.status >= 500 or response.status == 429,
            )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large()
        received, beat = 0, time.monotonic()
        for chunk in response.stream(1 << 16):
            received += len(chunk)
            if received > limit:  # a missing or lying Content-Length ends here
                raise _too_large()
            out.write(chunk)
            if time.monotonic() - beat >= settings.BTRO_HEARTBEAT_SECONDS:
                on_heartbeat()
                beat = time.monotonic()
        return str(response.headers.get("Content-Type", ""))


def job_fetch_input(*, job: Job, on_heartbeat: Callable[[], None]) -> bool:
    """Store a file_url job's input as an upload's would be; False if this run lost the job
    meanwhile. FetchFailed says why a fetch failed."""
    seconds = settings.BTRO_FETCH_TIME_LIMIT_SECONDS
    deadline = time.monotonic() + seconds
    suffix = Path(job.filename).suffix.lower()[:8]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        try:
            content_type = _download(
                job.source_url, tmp, deadline=deadline, on_heartbeat=on_heartbeat
            )
        except outbound.AddressRefused as err:
            raise FetchFailed(f"file_url was refused: {err}") from None
        except outbound.OutboundError as err:
            if time.monotonic() >= deadline:
                raise FetchFailed(
                    f"Downloading file_url timed out: it took longer than the {seconds:g} s limit."
                ) from None
            raise FetchFailed(f"Could not download file_url: {err}", transient=True) from None
        tmp.flush()
        try:
            info = probe(tmp.name)
        except AudioError as err:
            kind = f" ({content_type.split(';')[0].strip()})" if content_type else ""
            raise FetchFailed(f"The file at file_url{kind} is not audio: {err}") from None
        size = tmp.tell()
        name = f"uploads/{job.id}/input{suffix}"
        default_storage.delete(name)  # a fetch cut short before it was recorded
        tmp.seek(0)
        name = default_storage.save(name, File(tmp))
    job.input_name, job.input_bytes, job.duration = name, size, info.duration
    return bool(owned(job).update(input_name=name, input_bytes=size, duration=info.duration))
