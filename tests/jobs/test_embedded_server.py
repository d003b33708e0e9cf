"""`make run`'s embedded default, as a user meets it: one process, nothing configured,
and a live job goes from upload to downloadable stems."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import soundfile as sf

from tests.burst import (
    CONFIG,
    ROOT,
    free_port,
    manage,
    multipart,
    request,
    server_env,
    serving,
)
from tests.conftest import wav_bytes
from tests.services import REDIS_URL, require_service


def call(url: str, key: str, data: bytes | None = None, content_type: str = "") -> dict:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Authorization", f"Bearer {key}")
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_with_nothing_configured_one_process_serves_and_runs_a_live_job(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CONFIG and not k.startswith("BTRO_")}
    env["BTRO_VAR_DIR"] = str(tmp_path / "var")
    manage("migrate", "--noinput", env=env)
    key = manage("create_api_key", "--email", "me@example.com", "--mode", "live", env=env).strip()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/v1/openapi.json", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        body, content_type = multipart({"tier": "pro"}, "song.wav", wav_bytes(3.0))
        job = call(f"{base}/v1/jobs", key, body, content_type)
        assert job["id"].startswith("job_") and job["livemode"] is True
        deadline = time.monotonic() + 90
        while job["status"] == "queued":
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(2)
            job = call(f"{base}/v1/jobs/{job['id']}", key)
        assert job["status"] == "succeeded", job
        assert job["result"]["engine"] == "dsp"
        for stem in ("vocals", "drums", "bass", "other"):
            url = job["result"]["stems"][stem]["url"]
            audio, rate = sf.read(io.BytesIO(urllib.request.urlopen(url, timeout=30).read()))
            assert len(audio) == 3 * 44100 and rate == 44100
        # A newcomer's first start says nothing alarming (nor any error).
        warnings = [line for line in (tmp_path / "serve.log").read_text().splitlines()
                    if " WARNING " in line or " ERROR " in line]  # fmt: skip
        assert warnings == []
    finally:
        server.terminate()
        server.wait(20)


HELD_KEY = """
from pathlib import Path
from django.core.files.uploadedfile import SimpleUploadedFile
from accounts.models import User
from jobs.idempotency import idempotency_fingerprint
from jobs.models import IdempotencyRecord
upload = SimpleUploadedFile("song.wav", Path({wav!r}).read_bytes())
fingerprint = idempotency_fingerprint(
    method="POST", path="/v1/jobs", params={{"tier": ["pro"]}}, files={{"file": [upload]}}
)
user = User.objects.get(email="me@example.com")
IdempotencyRecord.objects.create(user=user, livemode=True, key="order-7", fingerprint=fingerprint)
"""


def test_a_restart_frees_the_keys_held_by_requests_that_died_with_the_last_process(tmp_path):
    env = server_env(tmp_path / "var")
    manage("migrate", "--noinput", env=env)
    key = manage("create_api_key", "--email", "me@example.com", "--mode", "live", env=env).strip()
    wav = tmp_path / "song.wav"
    wav.write_bytes(wav_bytes(1.0))
    manage("shell", "-c", HELD_KEY.format(wav=str(wav)), env=env)  # its request was killed
    body, content_type = multipart({"tier": "pro"}, "song.wav", wav.read_bytes())
    with serving(env, tmp_path / "serve.log") as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": content_type,
            "Idempotency-Key": "order-7",
        }
        conn.request("POST", "/v1/jobs", body=body, headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        conn.close()
    assert response.status == 201, answer  # not a 409 for the next 10 minutes


def started(env: dict[str, str], log_path) -> tuple[subprocess.Popen, int]:
    """`manage.py serve` on a free port, once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while request(port, "GET", "/v1/openapi.json")[0] != 200:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(log_path.read_text())
        time.sleep(0.3)
    return server, port


def processes_under(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in done.stdout.split()]


def processes_settle_under(pid: int, count: int, seconds: float = 30.0) -> list[int]:
    """The children of `pid` once there are `count` (gunicorn forks its workers one by one,
    the port answering after the first), or as they are after `seconds`."""
    deadline = time.monotonic() + seconds
    while len(children := processes_under(pid)) != count and time.monotonic() < deadline:
        time.sleep(0.2)
    return children


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_embedded_it_is_gunicorn_with_one_worker_process_that_stops_its_worker_cleanly(
    tmp_path, stop
):
    env = {**server_env(tmp_path / "var"), "LOG_LEVEL": "INFO", "WEB_CONCURRENCY": "4"}
    manage("migrate", "--noinput", env=env)
    log = tmp_path / "serve.log"
    server, port = started(env, log)
    try:
        # The in-memory broker's jobs run where they were queued: one process, whatever
        # WEB_CONCURRENCY says, with the worker (and the engines' checkpoints) in it.
        assert len(processes_under(server.pid)) == 1
        status, ready = request(port, "GET", "/readyz")
        assert status == 200 and "models" in ready["components"], ready
        server.send_signal(stop)
        assert server.wait(15) == 0
    finally:
        server.kill()
        server.wait(10)
    text = log.read_text()
    assert "Using worker: gthread" in text, text
    assert text.index("Embedded worker started") < text.index("Embedded worker stopped"), text


def test_with_a_broker_it_serves_the_web_tier_alone_in_web_concurrency_processes(tmp_path):
    require_service(REDIS_URL, "Redis")
    env = server_env(tmp_path / "var", BROKER_URL=REDIS_URL, WEB_CONCURRENCY="3")
    env["LOG_LEVEL"] = "INFO"
    manage("migrate", "--noinput", env=env)
    log = tmp_path / "serve.log"
    server, port = started(env, log)
    try:
        assert len(processes_settle_under(server.pid, 3)) == 3
        status, ready = request(port, "GET", "/readyz")
        assert status == 200 and "models" not in ready["components"], ready  # jobs run apart
        server.terminate()
        assert server.wait(15) == 0
    finally:
        server.kill()
        server.wait(10)
    assert "Embedded worker" not in log.read_text()
