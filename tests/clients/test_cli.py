"""The `btro` command line, run as a process against live_server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)
SDK = Path(__file__).resolve().parents[2] / "clients" / "python"


def btro(*args: str, key: str, url: str, **options) -> subprocess.CompletedProcess:
    env = {**os.environ, "BTRO_API_KEY": key, "BTRO_BASE_URL": url, "PYTHONPATH": str(SDK)}
    options.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "btro_sdk", *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=60,
        **options,
    )


def test_the_btro_script_is_installed_with_the_sdk():
    script = Path(sys.executable).parent / "btro"
    assert script.exists(), "make install puts the SDK (clients/python) in the venv"


def test_separate_uploads_waits_and_downloads_with_plain_lines_when_piped(
    live_server, test_key, tmp_path
):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(1.0))
    out = tmp_path / "stems"
    done = btro(
        "separate", str(song), "--tier", "pro", "--out", str(out), key=test_key, url=live_server.url
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        str(out / f"{s}.wav") for s in ("vocals", "drums", "bass", "other")
    ]
    lines = done.stderr.splitlines()
    assert "uploading: 100%" in lines and "\r" not in done.stderr
    assert any(line.startswith("separating (succeeded): 100%") for line in lines)
    assert lines[-1] == f"downloaded 4 stems to {out}"
    audio, _ = sf.read(out / "drums.wav")
    assert len(audio) > 0


def test_separate_draws_progress_bars_on_a_terminal(live_server, test_key, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(0.5))
    leader, follower = pty.openpty()
    shown = bytearray()

    def drain() -> None:  # read the terminal as it is written, so the child never blocks
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = btro(
            "separate", str(song), "--tier", "basic", "--out", str(tmp_path / "o"),
            key=test_key, url=live_server.url, stderr=follower,
        )  # fmt: skip
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    assert done.returncode == 0
    assert b"\ruploading" in shown and b"100%" in shown and b"[#####" in shown


def test_a_failure_exits_non_zero_with_the_message_and_request_id(live_server, test_key, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(0.2))
    done = btro("separate", str(song), "--tier", "gold", key=test_key, url=live_server.url)
    assert done.returncode == 2  # argparse: not a tier
    done = btro("jobs", "get", "job_test_missing", key=test_key, url=live_server.url)
    assert done.returncode == 1
    assert "No such job: 'job_test_missing'" in done.stderr
    assert "404 invalid_request_error (not_found); request id: req_" in done.stderr
    done = btro("balance", key="sk_test_nope", url=live_server.url)
    assert done.returncode == 1 and "authentication_error" in done.stderr


def test_jobs_list_get_and_balance(live_server, test_key, sdk):
    ids = [sdk.jobs.create(wav_bytes(0.2), tier="basic").id for _ in range(3)]
    listed = btro("jobs", "list", "--limit", "2", key=test_key, url=live_server.url)
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ids[::-1][:2]
    as_json = btro("jobs", "list", "--json", key=test_key, url=live_server.url)
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == ids[::-1]
    got = btro("jobs", "get", ids[0], key=test_key, url=live_server.url)
    assert json.loads(got.stdout)["id"] == ids[0]
    balance = btro("balance", key=test_key, url=live_server.url)
    assert balance.returncode == 0 and "credits available" in balance.stdout
    assert "  pro: " in balance.stdout
