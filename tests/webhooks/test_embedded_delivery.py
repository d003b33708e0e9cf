"""`make run`'s one process delivers webhooks too: its embedded worker takes the webhooks
queue beside the jobs queue."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from tests.burst import manage, multipart, server_env, serving
from tests.conftest import wav_bytes
from tests.webhooks.receiver import verify


def call(port: int, path: str, key: str, data: bytes, content_type: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST")
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_the_embedded_server_delivers_a_test_jobs_event_at_its_completion(tmp_path, receiver):
    env = server_env(tmp_path / "var", BTRO_WEBHOOK_ALLOW_PRIVATE="true")
    manage("migrate", "--noinput", env=env)
    key = manage("create_api_key", "--email", "me@example.com", "--mode", "test", env=env)
    key = key.strip()
    with serving(env, tmp_path / "serve.log") as port:
        form = urllib.parse.urlencode(
            [("url", receiver.url), ("enabled_events[]", "job.succeeded")]
        ).encode()
        endpoint = call(
            port, "/v1/webhook_endpoints", key, form, "application/x-www-form-urlencoded"
        )
        body, content_type = multipart({"tier": "pro"}, "song.wav", wav_bytes(1.0))
        job = call(port, "/v1/jobs", key, body, content_type)
        event = verify(receiver.wait_for(1, timeout=20)[0], endpoint["secret"])
    assert event["type"] == "job.succeeded" and event["data"]["object"]["id"] == job["id"]
    assert event["created"] == job["created"] + 2
