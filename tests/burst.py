"""A burst of concurrent API calls against a real `manage.py serve`, and the ledger after it.

Shared by tests/jobs/test_concurrency.py and bench/concurrency.py. Standard library only:
the server runs in its own process, configured by the environment it is given.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ("DATABASE_URL", "BROKER_URL", "CACHE_URL", "MEDIA_ROOT", "AWS_STORAGE_BUCKET_NAME")
HOST = "127.0.0.1"

# Run by `manage.py shell` inside the server's configuration: one account per email with
# its free credits (BTRO_FREE_CREDITS) and `keys` live keys; prints {email: [secrets]}.
SETUP = """
import json
from accounts.services import api_key_create, user_create
emails, keys = json.loads({spec!r})
out = {{}}
for email in emails:
    user = user_create(email=email)
    out[email] = [api_key_create(user=user, mode="live", name=str(i))[1] for i in range(keys)]
print(json.dumps(out))
"""

# Prints, for the accounts named, the lowest running balance in ledger order and the final
# one, and for each of their live jobs its number of cost entries.
LEDGER = """
import json
from itertools import accumulate
from accounts.models import CreditEntry, User
from jobs.models import Job
users = User.objects.filter(email__in=json.loads({emails!r}))
accounts = {{}}
for user in users:
    entries = CreditEntry.objects.filter(user=user).order_by("pk")
    running = list(accumulate(entries.values_list("amount", flat=True))) or [0]
    accounts[user.email] = {{"lowest": min(running), "final": running[-1]}}
costs = {{
    job.id: CreditEntry.objects.filter(job_id=job.id, kind="cost").count()
    for job in Job.objects.filter(user__in=users, livemode=True)
}}
print(json.dumps({{"accounts": accounts, "costs": costs}}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in fields.items():
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        )
        body.write(f"{value}\r\n".encode())
    body.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    body.write(data + f"\r\n--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def short_wav(seconds: float = 0.5, sample_rate: int = 8000) -> bytes:
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sample_rate)) / sample_rate)
    buf = io.BytesIO()
    sf.write(buf, tone.astype(np.float32), sample_rate, format="WAV")
    return buf.getvalue()


def server_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The embedded default (nothing configured) in `var_dir`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG and not k.startswith("BTRO_")}
    env.update(BTRO_VAR_DIR=str(var_dir), LOG_LEVEL="ERROR", **extra)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def accounts_create(env: dict[str, str], emails: list[str], keys: int) -> dict[str, list[str]]:
    code = SETUP.format(spec=json.dumps([emails, keys]))
    return json.loads(manage("shell", "-c", code, env=env).strip().splitlines()[-1])


def ledger(env: dict[str, str], emails: list[str]) -> dict:
    code = LEDGER.format(emails=json.dumps(emails))
    return json.loads(manage("shell", "-c", code, env=env).strip().splitlines()[-1])


@contextmanager
def serving(env: dict[str, str], log: Path):
    """`manage.py serve` on a free port; yields its port once it answers."""
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", f"{HOST}:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while request(port, "GET", "/v1/openapi.json")[0] != 200:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            yield port
        finally:
            server.terminate()
            server.wait(20)


def request(
    port: int,
    method: str,
    path: str,
    key: str | None = None,
    body: bytes | None = None,
    content_type: str = "",
) -> tuple[int, dict]:
    """(status, JSON body); a refused or dropped connection is status 0."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if content_type:
        headers["Content-Type"] = content_type
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, {"raw": raw[:200].decode(errors="replace")}
    except OSError as err:
        return 0, {"raw": repr(err)}
    finally:
        conn.close()


@dataclass
class Burst:
    statuses: Counter = field(default_factory=Counter)
    created: dict[str, str] = field(default_factory=dict)  # job id -> account email
    errors: list[tuple[int, dict]] = field(default_factory=list)  # answers >= 500 (or 0)
    seconds: float = 0.0


def burst(port: int, accounts: dict[str, list[str]], wav: bytes, total: int = 100) -> Burst:
    """`total` requests released at once: live creations from every key, interleaved with
    polls of a job created beforehand and list calls."""
    keys = [(email, key) for email, secrets in accounts.items() for key in secrets]
    body, content_type = multipart({"tier": "pro"}, "burst.wav", wav)
    result = Burst()
    polled = []
    for email, key in keys[:: max(1, len(keys) // len(accounts))]:
        for _ in range(5):  # one job per account to poll; on a server that fails, retry
            status, job = request(port, "POST", "/v1/jobs", key, body, content_type)
            if status == 201:
                polled.append((email, key, job["id"]))
                break
            result.errors.append((status, job))
        assert polled[-1][1] == key, result.errors
    result.created.update({job_id: email for email, _, job_id in polled})
    lock = threading.Lock()
    start = threading.Barrier(total)

    def one(i: int) -> None:
        email, key = keys[i % len(keys)]
        call: tuple[str, str, str, bytes | None, str]
        if i % 10 < 7:
            call = ("POST", "/v1/jobs", key, body, content_type)
        elif i % 10 < 9:
            email, key, job_id = polled[i % len(polled)]
            call = ("GET", f"/v1/jobs/{job_id}", key, None, "")
        else:
            call = ("GET", "/v1/jobs?limit=5", key, None, "")
        start.wait()
        status, answer = request(port, *call)
        with lock:
            result.statuses[status] += 1
            if status >= 500 or status == 0:
                result.errors.append((status, answer))
            if call[0] == "POST" and status == 201:
                result.created[answer["id"]] = email

    threads = [threading.Thread(target=one, args=(i,)) for i in range(total)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    result.seconds = time.monotonic() - began
    return result


def unpaid(result: Burst, after: dict) -> list[str]:
    """Accepted jobs without exactly one cost entry, and stored jobs nobody was told of."""
    wrong = [job for job in result.created if after["costs"].get(job) != 1]
    return wrong + [job for job in after["costs"] if job not in result.created]


def exceptions(log: str) -> Counter:
    """The server log's exceptions, counted by their last line."""
    return Counter(re.findall(r"^[\w.]+(?:Error|Exception): .*$", log, re.MULTILINE))


def emails(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"burst{i}-{tag}@example.com" for i in range(n)]
