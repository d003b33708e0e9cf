"""The README's SDK and CLI examples, run as written against live_server (key and URL from the
environment, as the README says), so they cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def example(kind: str) -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- readme-example: {kind} .*?-->\n```{kind}\n(.*?)```", readme, re.S)
    assert found, f"README.md has no `readme-example: {kind}` block"
    return found.group(1)


@pytest.fixture
def workdir(tmp_path, live_server, test_key):
    (tmp_path / "track.mp3").write_bytes(wav_bytes(1.0))  # by content, not by name
    env = {
        **os.environ,
        "BTRO_API_KEY": test_key,
        "BTRO_BASE_URL": live_server.url,
        "PYTHONPATH": str(ROOT / "clients" / "python"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return tmp_path, env


def test_the_python_example_runs_as_written(workdir):
    cwd, env = workdir
    done = subprocess.run(
        [sys.executable, "-c", example("python")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "succeeded 100" in done.stdout
    assert sorted(p.name for p in (cwd / "stems").iterdir()) == [
        "bass.wav", "drums.wav", "other.wav", "vocals.wav",
    ]  # fmt: skip


def test_the_command_line_example_runs_as_written(workdir):
    cwd, env = workdir
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example("sh")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (cwd / "stems" / "vocals.wav").stat().st_size > 1000
    assert "credits available" in done.stdout and "\tsucceeded\tpro\t" in done.stdout
