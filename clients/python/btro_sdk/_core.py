"""What the sync and async clients share, without any I/O: requests built, answers read,
retries decided, uploads prepared, jobs judged and stems placed."""

from __future__ import annotations

import io
import json
import os
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from . import errors

__version__ = "0.1.0"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = f"btro-python/{__version__}"
# The API allows polling one job about once per 2 s (BTRO_RATE_POLL, 4 per 6 s).
POLL_INTERVAL = 2.0
TERMINAL = ("succeeded", "failed", "canceled")

FileInput = str | os.PathLike[str] | bytes | IO[bytes]
ProgressCallback = Callable[[int, int | None], None]  # bytes so far, total (None: unknown)


class BtroObject(dict[str, Any]):
    """An API object: a dict whose keys read as attributes too (`job.status`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Request:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] | None = None
    upload: Upload | None = None
    idempotency_key: str | None = None
    stream: bool = False


def resolve_settings(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    key = api_key or os.environ.get("BTRO_API_KEY")
    if not key:
        raise errors.AuthenticationError("No API key: pass api_key=… or set BTRO_API_KEY.")
    url = base_url or os.environ.get("BTRO_BASE_URL") or DEFAULT_BASE_URL
    return key, url.rstrip("/")


def headers(api_key: str, request: Request) -> dict[str, str]:
    out = {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if request.idempotency_key:
        out["Idempotency-Key"] = request.idempotency_key
    if request.form is not None and request.upload is None:
        out["Content-Type"] = "application/x-www-form-urlencoded"
    return out


def body(request: Request) -> dict[str, Any]:
    """httpx keyword arguments for the request's body: multipart with a file, else urlencoded."""
    if request.upload is not None:
        data: dict[str, list[str]] = {}
        for name, value in request.form or []:
            data.setdefault(name, []).append(value)
        return {"data": data, "files": {"file": request.upload.httpx_file()}}
    if request.form is not None:
        return {"content": urlencode(request.form).encode()}
    return {}


def form(**fields: Any) -> list[tuple[str, str]]:
    """Form fields as the API reads them: metadata[key]=value, list[]=a&list[]=b, None left out;
    a metadata value of "" (or None inside the mapping) unsets that key."""
    out: list[tuple[str, str]] = []
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.extend((f"{name}[{k}]", "" if v is None else str(v)) for k, v in value.items())
        elif isinstance(value, list | tuple):
            out.extend((f"{name}[]", str(v)) for v in value)
        elif isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        else:
            out.append((name, str(value)))
    return out


def new_idempotency_key() -> str:
    return f"btro-sdk-{uuid.uuid4()}"


# Retries ----------------------------------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def retry_delay(
    attempt: int,
    *,
    status: int | None,
    retry_after: str | None = None,
    max_retries: int,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
) -> float | None:
    """Seconds to wait before retry `attempt + 1`, or None not to retry: connection errors
    (status None), 429 and 5xx, at most `max_retries` times, never another 4xx."""
    if attempt >= max_retries:
        return None
    if status is not None and status != 429 and status < 500:
        return None
    waited = retry_after_seconds(retry_after) if status in (429, 503) else None
    if waited is not None:
        return min(waited, 60.0) + random.uniform(0, 0.25)
    return random.uniform(0, min(max_backoff, backoff * 2**attempt))  # full jitter


# Answers ----------------------------------------------------------------------------------


def parse(status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """The answer's JSON as BtroObjects, or the catalogue's exception for an error answer."""
    try:
        data = json.loads(content, object_hook=BtroObject) if content else None
    except ValueError:
        data = None
    if 200 <= status < 300:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        text = content[:200].decode(errors="replace") or f"HTTP {status}"
        error = {"type": "api_error" if status >= 500 else "invalid_request_error"}
        error["message"] = text
    type_ = str(error.get("type") or "invalid_request_error")
    code = error.get("code") if isinstance(error.get("code"), str) else None
    cls = errors.error_class(status, type_, code)
    raise cls(
        str(error.get("message") or f"HTTP {status}"),
        status=status,
        type=type_,
        code=code,
        param=error.get("param"),
        request_id=error.get("request_id") or headers.get("request-id"),
        headers=dict(headers),
        body=data,
    )


# Uploads ----------------------------------------------------------------------------------


class Upload:
    """The file of a create, readable again from its start for every retry, counting bytes."""

    def __init__(
        self, file: FileInput, *, filename: str | None = None, on_progress: ProgressCallback | None
    ) -> None:
        self._owned = False
        if isinstance(file, bytes):
            raw: IO[bytes] = io.BytesIO(file)
            name = "upload"
        elif isinstance(file, str | os.PathLike):
            raw, name, self._owned = open(file, "rb"), Path(file).name, True  # noqa: SIM115
        else:
            name = Path(str(getattr(file, "name", "") or "upload")).name
            raw = file if _seekable(file) else io.BytesIO(file.read())
        self.raw = raw
        self.start = raw.tell()
        self.size = raw.seek(0, io.SEEK_END) - self.start
        raw.seek(self.start)
        self.filename = filename or name
        self.on_progress = on_progress
        self.sent = 0

    def httpx_file(self) -> tuple[str, Any]:
        return (self.filename, self)

    # The file-like face httpx reads: positions are relative to where the caller's file stood.
    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.sent += len(chunk)
        if self.on_progress is not None:
            self.on_progress(min(self.sent, self.size), self.size)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self.sent = offset
            return self.raw.seek(self.start + offset) - self.start
        return self.raw.seek(offset, whence) - self.start

    def tell(self) -> int:
        return self.raw.tell() - self.start

    def close(self) -> None:
        if self._owned:
            self.raw.close()


def _seekable(file: IO[bytes]) -> bool:
    try:
        return file.seekable()
    except (AttributeError, ValueError):
        return False


# Jobs -------------------------------------------------------------------------------------


def create_request(
    *,
    file: FileInput | None,
    tier: str,
    format: str | None,
    type: str | None,
    metadata: Mapping[str, str] | None,
    file_url: str | None,
    webhook: str | None,
    filename: str | None,
    idempotency_key: str | None,
    on_upload_progress: ProgressCallback | None,
) -> Request:
    if (file is None) == (file_url is None):
        raise ValueError("Pass file=… or file_url=…, one of them.")
    fields = form(
        tier=tier, type=type, format=format, metadata=metadata, file_url=file_url, webhook=webhook
    )
    upload = None
    if file is not None:
        upload = Upload(file, filename=filename, on_progress=on_upload_progress)
    return Request(
        "POST",
        "/v1/jobs",
        form=fields,
        upload=upload,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def list_params(**filters: Any) -> list[tuple[str, str]]:
    """created_gte=… → created[gte]=…; None left out."""
    params: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        for op in ("gte", "lte", "gt", "lt"):
            if name.endswith(f"_{op}"):
                name = f"{name[: -len(op) - 1]}[{op}]"
        params.append((name, str(int(value) if isinstance(value, bool | float) else value)))
    return params


def is_finished(job: Mapping[str, Any]) -> bool:
    return job.get("status") in TERMINAL


def check_outcome(job: Mapping[str, Any]) -> None:
    """Raise JobCanceled or JobFailed for a job that ended badly."""
    error = job.get("error") or {}
    if job.get("status") == "canceled" or error.get("type") == "canceled":
        raise errors.JobCanceled(job)
    if job.get("status") == "failed":
        raise errors.JobFailed(job)


@dataclass
class StemFile:
    stem: str
    url: str
    path: Path
    size: int | None


def stem_files(job: Mapping[str, Any], directory: str | os.PathLike[str]) -> list[StemFile]:
    result = job.get("result")
    if job.get("status") != "succeeded" or not result:
        raise errors.BtroError(f"Job {job.get('id')} has no result to download yet.")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    ext = result["format"]
    return [
        StemFile(stem, info["url"], folder / f"{stem}.{ext}", info.get("bytes"))
        for stem, info in result["stems"].items()
    ]


def range_header(written: int) -> dict[str, str]:
    return {"Range": f"bytes={written}-"} if written else {}


def pages_params(params: Iterable[tuple[str, str]], last_id: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in params if k != "starting_after"]
    return out + ([("starting_after", last_id)] if last_id else [])
