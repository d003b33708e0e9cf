"""The blocking client: `Client(api_key=…, base_url=…)`."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from . import _core, errors
from ._core import BtroObject, FileInput, ProgressCallback, Request

DownloadProgress = Callable[[str, int, int | None], None]  # stem, bytes so far, total


class Job(BtroObject):
    """A Job object that can wait for itself and download its stems."""

    _client: Client

    @classmethod
    def bind(cls, data: Mapping[str, Any], client: Client) -> Job:
        job = cls(data)
        job._client = client
        return job

    def refresh(self) -> Job:
        self.update(self._client.jobs.retrieve(self["id"]))
        return self

    def wait(
        self,
        timeout: float = 600.0,
        on_progress: Callable[[Job], None] | None = None,
        poll_interval: float = _core.POLL_INTERVAL,
    ) -> Job:
        """Poll until the job ends (at the API's allowed rate); the finished job, or JobFailed,
        JobCanceled or WaitTimeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            seen = (self.get("status"), self.get("progress"))
            if on_progress is not None and seen != last:
                on_progress(self)
                last = seen
            if _core.is_finished(self):
                break
            if time.monotonic() + poll_interval > deadline:
                raise errors.WaitTimeout(f"Job {self['id']} is still {self['status']}.", job=self)
            time.sleep(poll_interval)
            self.refresh()
        _core.check_outcome(self)
        return self

    def download(
        self, directory: str | os.PathLike[str], on_progress: DownloadProgress | None = None
    ) -> dict[str, Path]:
        """Stream each stem to directory/<stem>.<ext>, resuming with Range after a drop."""
        files = {}
        for stem in _core.stem_files(self, directory):
            self._client._download(stem, on_progress)
            files[stem.stem] = stem.path
        return files


class Client:
    """The BTRO API. Reads BTRO_API_KEY and BTRO_BASE_URL unless given a key and URL."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        max_retries: int = 3,
        timeout: float = 60.0,
        backoff: float = 0.5,
    ) -> None:
        self.api_key, self.base_url = _core.resolve_settings(api_key, base_url)
        self.max_retries, self.backoff = max_retries, backoff
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.jobs = Jobs(self)
        self.events = Events(self)
        self.webhook_endpoints = WebhookEndpoints(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def balance(self) -> BtroObject:
        return self.object(Request("GET", "/v1/balance"))

    def webhook_secret(self) -> str:
        """The secret that signs deliveries to a job's own `webhook` URL, for this key's mode."""
        return str(self.object(Request("GET", "/v1/webhook_secret"))["secret"])

    def usage(self, start: int | None = None, end: int | None = None) -> BtroObject:
        params = _core.list_params(start=start, end=end)
        return self.object(Request("GET", "/v1/usage", params=params))

    def object(self, request: Request) -> BtroObject:
        answer = self.request(request)
        if not isinstance(answer, BtroObject):
            raise errors.BtroError(f"Expected a JSON object from {request.path}, got {answer!r}")
        return answer

    def request(self, request: Request) -> Any:
        """Send with retries (connection errors, 429, 5xx); the parsed answer or an APIError."""
        try:
            return self._send(request)
        finally:
            if request.upload is not None:
                request.upload.close()

    def _send(self, request: Request) -> Any:
        for attempt in itertools.count():
            try:
                response = self._http.request(
                    request.method,
                    request.path,
                    params=tuple(request.params),
                    headers=_core.headers(self.api_key, request),
                    **_core.body(request),
                )
            except httpx.TransportError as exc:
                delay = self._delay(attempt, None, None)
                if delay is None:
                    raise errors.APIConnectionError(f"{type(exc).__name__}: {exc}") from exc
                time.sleep(delay)
                continue
            delay = self._delay(attempt, response.status_code, response.headers.get("Retry-After"))
            if delay is None:
                return _core.parse(response.status_code, response.headers, response.content)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, status: int | None, retry_after: str | None) -> float | None:
        return _core.retry_delay(
            attempt,
            status=status,
            retry_after=retry_after,
            max_retries=self.max_retries,
            backoff=self.backoff,
        )

    def _download(self, stem: _core.StemFile, on_progress: DownloadProgress | None) -> None:
        part = stem.path.with_name(stem.path.name + ".part")
        part.write_bytes(b"")
        written, failures = 0, 0
        while True:
            status = None
            retry_after = None
            try:
                # No API key: stem URLs are their own credential (and may redirect to storage).
                with httpx.stream(
                    "GET",
                    stem.url,
                    headers={"User-Agent": _core.USER_AGENT, **_core.range_header(written)},
                    timeout=self._http.timeout,
                    follow_redirects=True,
                ) as response:
                    status = response.status_code
                    if status < 300:
                        if status == 200 and written:  # the Range was ignored: start again
                            part.write_bytes(b"")
                            written = 0
                        with part.open("ab") as out:
                            for chunk in response.iter_bytes():
                                out.write(chunk)
                                written += len(chunk)
                                failures = 0  # progress made: a later drop starts afresh
                                if on_progress is not None:
                                    on_progress(stem.stem, written, stem.size)
                        break
                    if status == 416 and written == stem.size:  # dropped right at the end
                        break
                    retry_after = response.headers.get("Retry-After")
                    content = response.read()
                    if self._delay(failures, status, retry_after) is None:
                        _core.parse(status, response.headers, content)
            except httpx.TransportError as exc:
                if self._delay(failures, None, None) is None:
                    raise errors.APIConnectionError(
                        f"Downloading {stem.stem} failed after {written} bytes: {exc}"
                    ) from exc
            time.sleep(self._delay(failures, status, retry_after) or 0)
            failures += 1
        part.replace(stem.path)


class Jobs:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        file: FileInput | None = None,
        *,
        tier: str,
        format: str | None = None,
        type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        file_url: str | None = None,
        webhook: str | None = None,
        filename: str | None = None,
        idempotency_key: str | None = None,
        on_upload_progress: ProgressCallback | None = None,
    ) -> Job:
        request = _core.create_request(
            file=file,
            tier=tier,
            format=format,
            type=type,
            metadata=metadata,
            file_url=file_url,
            webhook=webhook,
            filename=filename,
            idempotency_key=idempotency_key,
            on_upload_progress=on_upload_progress,
        )
        return Job.bind(self._client.object(request), self._client)

    def retrieve(self, id: str) -> Job:
        return Job.bind(self._client.object(Request("GET", f"/v1/jobs/{id}")), self._client)

    def cancel(self, id: str) -> Job:
        request = Request(
            "POST", f"/v1/jobs/{id}/cancel", form=[], idempotency_key=_core.new_idempotency_key()
        )
        return Job.bind(self._client.object(request), self._client)

    def delete(self, id: str) -> BtroObject:
        return self._client.object(Request("DELETE", f"/v1/jobs/{id}"))

    def update(self, id: str, *, metadata: Mapping[str, str | None]) -> Job:
        request = Request(
            "POST",
            f"/v1/jobs/{id}",
            form=_core.form(metadata=metadata),
            idempotency_key=_core.new_idempotency_key(),
        )
        return Job.bind(self._client.object(request), self._client)

    def list(
        self,
        *,
        status: str | None = None,
        tier: str | None = None,
        created_gte: int | None = None,
        created_lte: int | None = None,
        limit: int | None = None,
    ) -> Iterator[Job]:
        """Every matching job, newest first, following has_more page after page (`limit` is the
        page size)."""
        params = _core.list_params(
            status=status, tier=tier, created_gte=created_gte, created_lte=created_lte, limit=limit
        )
        for item in _pages(self._client, "/v1/jobs", params):
            yield Job.bind(item, self._client)


def _pages(client: Client, path: str, params: list[tuple[str, str]]) -> Iterator[BtroObject]:
    last_id = None
    while True:
        page = client.object(Request("GET", path, params=_core.pages_params(params, last_id)))
        yield from page["data"]
        if not page["has_more"] or not page["data"]:
            return
        last_id = page["data"][-1]["id"]


class Events:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, type: str | None = None, limit: int | None = None) -> Iterator[BtroObject]:
        return _pages(self._client, "/v1/events", _core.list_params(type=type, limit=limit))

    def retrieve(self, id: str) -> BtroObject:
        return self._client.object(Request("GET", f"/v1/events/{id}"))


class WebhookEndpoints:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _post(self, path: str, **fields: Any) -> BtroObject:
        request = Request(
            "POST", path, form=_core.form(**fields), idempotency_key=_core.new_idempotency_key()
        )
        return self._client.object(request)

    def create(
        self,
        *,
        url: str,
        enabled_events: Sequence[str] | None = None,
        description: str | None = None,
    ) -> BtroObject:
        return self._post(
            "/v1/webhook_endpoints",
            url=url,
            enabled_events=enabled_events,
            description=description,
        )

    def list(self, *, limit: int | None = None) -> Iterator[BtroObject]:
        return _pages(self._client, "/v1/webhook_endpoints", _core.list_params(limit=limit))

    def retrieve(self, id: str) -> BtroObject:
        request = Request("GET", f"/v1/webhook_endpoints/{id}")
        return self._client.object(request)

    def update(
        self,
        id: str,
        *,
        url: str | None = None,
        enabled_events: Sequence[str] | None = None,
        description: str | None = None,
        disabled: bool | None = None,
    ) -> BtroObject:
        return self._post(
            f"/v1/webhook_endpoints/{id}",
            url=url,
            enabled_events=enabled_events,
            description=description,
            disabled=disabled,
        )

    def delete(self, id: str) -> BtroObject:
        request = Request("DELETE", f"/v1/webhook_endpoints/{id}")
        return self._client.object(request)

    def roll_secret(self, id: str) -> BtroObject:
        return self._post(f"/v1/webhook_endpoints/{id}/roll_secret")
