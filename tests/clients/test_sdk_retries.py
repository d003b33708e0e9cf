"""Retries with backoff on connection errors, 429 (Retry-After) and 5xx, never on other 4xx;
a download resumed with Range after the connection drops. Real loopback servers."""

from __future__ import annotations

import json
import socket
import time

import pytest
from btro_sdk import APIConnectionError, AsyncClient, Client, errors

from tests.clients.conftest import answer, run_async

JOB = {"id": "job_test_x", "object": "job", "status": "queued", "progress": 0}


def client_for(url: str, **options) -> Client:
    options.setdefault("backoff", 0.05)
    return Client(api_key="sk_test_loopback", base_url=url, **options)


def test_a_429_is_retried_after_its_retry_after_and_then_succeeds(loopback):
    def respond(handler, index):
        if index == 0:
            body = {"error": {"type": "rate_limit_exceeded", "message": "slow down"}}
            answer(handler, 429, json.dumps(body).encode(), Retry_After="1")
        else:
            answer(handler, 200, json.dumps(JOB).encode())

    server = loopback(respond)
    started = time.monotonic()
    job = client_for(server.url).jobs.retrieve("job_test_x")
    assert job.id == "job_test_x" and len(server.seen) == 2
    assert 1.0 <= time.monotonic() - started < 3.0


def test_the_async_client_retries_a_429_too(loopback):
    def respond(handler, index):
        if index == 0:
            return answer(
                handler, 429, b'{"error": {"type": "rate_limit_exceeded"}}', Retry_After="1"
            )
        answer(handler, 200, json.dumps(JOB).encode())

    server = loopback(respond)

    async def retrieve() -> str:
        async with AsyncClient(api_key="sk_test_x", base_url=server.url) as client:
            return (await client.jobs.retrieve("job_test_x")).id

    started = time.monotonic()
    assert run_async(retrieve()) == "job_test_x" and len(server.seen) == 2
    assert time.monotonic() - started >= 1.0


def test_a_create_is_retried_after_a_5xx_with_the_same_idempotency_key_and_the_whole_file(
    loopback,
):
    statuses = [503, 500, 201]
    server = loopback(lambda h, i: answer(h, statuses[min(i, 2)], json.dumps(JOB).encode()))
    job = client_for(server.url).jobs.create(b"RIFF-audio-bytes", tier="pro", metadata={"a": "1"})
    assert job.id == "job_test_x" and len(server.seen) == 3
    keys = {seen.headers["Idempotency-Key"] for seen in server.seen}
    assert len(keys) == 1 and keys.pop().startswith("btro-sdk-")
    assert all(b"RIFF-audio-bytes" in seen.body for seen in server.seen)
    assert all(b'name="metadata[a]"' in seen.body for seen in server.seen)
    # A second create is another operation: another key.
    client_for(server.url, max_retries=0).jobs.create(b"x", tier="pro")
    assert server.seen[-1].headers["Idempotency-Key"] not in {
        server.seen[0].headers["Idempotency-Key"]
    }


def test_retries_are_bounded_and_end_in_the_server_error(loopback):
    body = {"error": {"type": "api_error", "message": "down", "request_id": "req_1"}}
    server = loopback(lambda h, i: answer(h, 502, json.dumps(body).encode()))
    with pytest.raises(errors.ServerError) as raised:
        client_for(server.url, max_retries=2).jobs.retrieve("job_test_x")
    assert len(server.seen) == 3 and raised.value.status == 502
    assert raised.value.request_id == "req_1"


@pytest.mark.parametrize("status", [400, 401, 404, 409, 410])
def test_other_4xx_are_never_retried(loopback, status):
    server = loopback(lambda h, i: answer(h, status, b'{"error": {"type": "x", "message": "no"}}'))
    with pytest.raises(errors.APIError):
        client_for(server.url).jobs.retrieve("job_test_x")
    assert len(server.seen) == 1


def test_a_connection_dropped_before_the_answer_is_retried(loopback):
    def respond(handler, index):
        if index < 2:  # the request read, then the connection closed with no answer
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        answer(handler, 200, b'{"object": "balance", "available": 5}')

    server = loopback(respond)
    assert client_for(server.url).balance().available == 5
    assert len(server.seen) == 3


def test_a_refused_connection_is_retried_then_raised():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(APIConnectionError):
        client_for(f"http://127.0.0.1:{port}", max_retries=2, backoff=0.2).balance()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_dropped_download_resumes_with_range_where_it_stopped(loopback, tmp_path, flavour):
    stem = bytes(range(256)) * 400  # 102,400 bytes
    cut = 30_000

    def respond(handler, index):
        if handler.path.startswith("/v1/jobs/"):
            url = f"http://127.0.0.1:{handler.server.server_address[1]}/files/vocals.wav"
            job = {
                **JOB,
                "status": "succeeded",
                "result": {"format": "wav", "stems": {"vocals": {"url": url, "bytes": len(stem)}}},
            }
            return answer(handler, 200, json.dumps(job).encode())
        wanted = handler.headers.get("Range")
        if wanted is None:  # the whole file promised, the connection cut part-way
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(stem)))
            handler.end_headers()
            handler.wfile.write(stem[:cut])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{len(stem) - 1}/{len(stem)}")
        handler.send_header("Content-Length", str(len(stem) - start))
        handler.end_headers()
        handler.wfile.write(stem[start:])

    server = loopback(respond)
    progress: list[int] = []

    def on_progress(stem: str, done: int, total: int | None) -> None:
        progress.append(done)

    if flavour == "sync":
        job = client_for(server.url).jobs.retrieve("job_test_x")
        files = job.download(tmp_path, on_progress=on_progress)
    else:

        async def download() -> dict:
            async with AsyncClient(api_key="sk_test_x", base_url=server.url) as client:
                job = await client.jobs.retrieve("job_test_x")
                return await job.download(tmp_path, on_progress=on_progress)

        files = run_async(download())
    assert files["vocals"].read_bytes() == stem
    downloads = [seen for seen in server.seen if seen.path.startswith("/files/")]
    assert [seen.headers.get("Range") for seen in downloads] == [None, f"bytes={cut}-"]
    assert "Authorization" not in downloads[0].headers  # stem URLs are their own credential
    assert progress[-1] == len(stem)


def test_a_download_that_keeps_failing_gives_up(loopback, tmp_path):
    def respond(handler, index):
        if handler.path.startswith("/v1/jobs/"):
            url = f"http://127.0.0.1:{handler.server.server_address[1]}/files/vocals.wav"
            job = {
                **JOB,
                "status": "succeeded",
                "result": {"format": "wav", "stems": {"vocals": {"url": url, "bytes": 10}}},
            }
            return answer(handler, 200, json.dumps(job).encode())
        answer(handler, 410, b'{"error": {"type": "invalid_request_error", "message": "gone"}}')

    server = loopback(respond)
    job = client_for(server.url).jobs.retrieve("job_test_x")
    with pytest.raises(errors.Gone):
        job.download(tmp_path)
    assert len([s for s in server.seen if s.path.startswith("/files/")]) == 1
