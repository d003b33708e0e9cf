"""The asyncio twin of Client: the same requests, answers and retries (from _core), awaited."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from . import _core, errors
from ._core import BtroObject, FileInput, ProgressCallback, Request
from ._sync import DownloadProgress


class AsyncJob(BtroObject):
    _client: AsyncClient

    @classmethod
    def bind(cls, data: Mapping[str, Any], client: AsyncClient) -> AsyncJob:
        job = cls(data)
        job._client = client
        return job

    async def refresh(self) -> AsyncJob:
        self.update(await self._client.jobs.retrieve(self["id"]))
        return self

    async def wait(
        self,
        timeout: float = 600.0,
        on_progress: Callable[[AsyncJob], None] | None = None,
        poll_interval: float = _core.POLL_INTERVAL,
    ) -> AsyncJob:
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
            await asyncio.sleep(poll_interval)
            await self.refresh()
        _core.check_outcome(self)
        return self

    async def download(
        self, directory: str | os.PathLike[str], on_progress: DownloadProgress | None = None
    ) -> dict[str, Path]:
        files = {}
        for stem in _core.stem_files(self, directory):
            await self._client._download(stem, on_progress)
            files[stem.stem] = stem.path
        return files


class AsyncClient:
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
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.jobs = AsyncJobs(self)
        self.events = AsyncEvents(self)
        self.webhook_endpoints = AsyncWebhookEndpoints(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def balance(self) -> BtroObject:
        return await self.object(Request("GET", "/v1/balance"))

    async def webhook_secret(self) -> str:
        """The secret that signs deliveries to a job's own `webhook` URL, for this key's mode."""
        return str((await self.object(Request("GET", "/v1/webhook_secret")))["secret"])

    async def usage(self, start: int | None = None, end: int | None = None) -> BtroObject:
        params = _core.list_params(start=start, end=end)
        return await self.object(Request("GET", "/v1/usage", params=params))

    async def object(self, request: Request) -> BtroObject:
        answer = await self.request(request)
        if not isinstance(answer, BtroObject):
            raise errors.BtroError(f"Expected a JSON object from {request.path}, got {answer!r}")
        return answer

    async def request(self, request: Request) -> Any:
        try:
            return await self._send(request)
        finally:
            if request.upload is not None:
                request.upload.close()

    async def _send(self, request: Request) -> Any:
        for attempt in itertools.count():
            try:
                response = await self._http.request(
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
                await asyncio.sleep(delay)
                continue
            delay = self._delay(attempt, response.status_code, response.headers.get("Retry-After"))
            if delay is None:
                return _core.parse(response.status_code, response.headers, response.content)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, status: int | None, retry_after: str | None) -> float | None:
        return _core.retry_delay(
            attempt,
            status=status,
            retry_after=retry_after,
            max_retries=self.max_retries,
            backoff=self.backoff,
        )

    async def _download(self, stem: _core.StemFile, on_progress: DownloadProgress | None) -> None:
        part = stem.path.with_name(stem.path.name + ".part")
        part.write_bytes(b"")
        written, failures = 0, 0
        async with httpx.AsyncClient(timeout=self._http.timeout, follow_redirects=True) as http:
            while True:
                status, retry_after = None, None
                headers = {"User-Agent": _core.USER_AGENT, **_core.range_header(written)}
                try:
                    async with http.stream("GET", stem.url, headers=headers) as response:
                        status = response.status_code
                        if status < 300:
                            if status == 200 and written:  # the Range was ignored
                                part.write_bytes(b"")
                                written = 0
                            with part.open("ab") as out:
                                async for chunk in response.aiter_bytes():
                                    out.write(chunk)
                                    written += len(chunk)
                                    failures = 0
                                    if on_progress is not None:
                                        on_progress(stem.stem, written, stem.size)
                            break
                        if status == 416 and written == stem.size:
                            break
                        retry_after = response.headers.get("Retry-After")
                        content = await response.aread()
                        if self._delay(failures, status, retry_after) is None:
                            _core.parse(status, response.headers, content)
                except httpx.TransportError as exc:
                    if self._delay(failures, None, None) is None:
                        raise errors.APIConnectionError(
                            f"Downloading {stem.stem} failed after {written} bytes: {exc}"
                        ) from exc
                await asyncio.sleep(self._delay(failures, status, retry_after) or 0)
                failures += 1
        part.replace(stem.path)


class AsyncJobs:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
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
    ) -> AsyncJob:
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
        return AsyncJob.bind(await self._client.object(request), self._client)

    async def retrieve(self, id: str) -> AsyncJob:
        answer = await self._client.object(Request("GET", f"/v1/jobs/{id}"))
        return AsyncJob.bind(answer, self._client)

    async def cancel(self, id: str) -> AsyncJob:
        request = Request(
            "POST", f"/v1/jobs/{id}/cancel", form=[], idempotency_key=_core.new_idempotency_key()
        )
        return AsyncJob.bind(await self._client.object(request), self._client)

    async def delete(self, id: str) -> BtroObject:
        return await self._client.object(Request("DELETE", f"/v1/jobs/{id}"))

    async def update(self, id: str, *, metadata: Mapping[str, str | None]) -> AsyncJob:
        request = Request(
            "POST",
            f"/v1/jobs/{id}",
            form=_core.form(metadata=metadata),
            idempotency_key=_core.new_idempotency_key(),
        )
        return AsyncJob.bind(await self._client.object(request), self._client)

    async def list(
        self,
        *,
        status: str | None = None,
        tier: str | None = None,
        created_gte: int | None = None,
        created_lte: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AsyncJob]:
        params = _core.list_params(
            status=status, tier=tier, created_gte=created_gte, created_lte=created_lte, limit=limit
        )
        async for item in _pages(self._client, "/v1/jobs", params):
            yield AsyncJob.bind(item, self._client)


async def _pages(
    client: AsyncClient, path: str, params: list[tuple[str, str]]
) -> AsyncIterator[BtroObject]:
    last_id = None
    while True:
        page = await client.object(Request("GET", path, params=_core.pages_params(params, last_id)))
        for item in page["data"]:
            yield item
        if not page["has_more"] or not page["data"]:
            return
        last_id = page["data"][-1]["id"]


class AsyncEvents:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self, *, type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[BtroObject]:
        return _pages(self._client, "/v1/events", _core.list_params(type=type, limit=limit))

    async def retrieve(self, id: str) -> BtroObject:
        return await self._client.object(Request("GET", f"/v1/events/{id}"))


class AsyncWebhookEndpoints:
    """The twin of _sync.WebhookEndpoints: the same requests, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _post(self, path: str, **fields: Any) -> BtroObject:
        request = Request(
            "POST", path, form=_core.form(**fields), idempotency_key=_core.new_idempotency_key()
        )
        return await self._client.object(request)

    async def create(
        self,
        *,
        url: str,
        enabled_events: Sequence[str] | None = None,
        description: str | None = None,
    ) -> BtroObject:
        return await self._post(
            "/v1/webhook_endpoints",
            url=url,
            enabled_events=enabled_events,
            description=description,
        )

    def list(self, *, limit: int | None = None) -> AsyncIterator[BtroObject]:
        return _pages(self._client, "/v1/webhook_endpoints", _core.list_params(limit=limit))

    async def retrieve(self, id: str) -> BtroObject:
        return await self._client.object(Request("GET", f"/v1/webhook_endpoints/{id}"))

    async def update(
        self,
        id: str,
        *,
        url: str | None = None,
        enabled_events: Sequence[str] | None = None,
        description: str | None = None,
        disabled: bool | None = None,
    ) -> BtroObject:
        return await self._post(
            f"/v1/webhook_endpoints/{id}",
            url=url,
            enabled_events=enabled_events,
            description=description,
            disabled=disabled,
        )

    async def delete(self, id: str) -> BtroObject:
        return await self._client.object(Request("DELETE", f"/v1/webhook_endpoints/{id}"))

    async def roll_secret(self, id: str) -> BtroObject:
        return await self._post(f"/v1/webhook_endpoints/{id}/roll_secret")
