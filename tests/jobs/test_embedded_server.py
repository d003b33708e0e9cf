"""`make run`'s embedded default, as a user meets it: one process, nothing configured,
and a live job goes from upload to downloadable stems."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import soundfile as sf

from tests.burst import CONFIG, ROOT, free_port, manage, multipart, server_env, serving
from tests.conftest import wav_bytes


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
