"""Time from `POST /v1/jobs/:id/cancel` to the separation child's exit, against a real server.

Not a test (tests/jobs/test_cancel_and_delete.py checks the 5 s bound once). One
`manage.py serve` (embedded: SQLite, in-process worker, one thread, the dsp engine) on a fresh
database; each run uploads a long track, waits until the worker's child is separating (the job
reports progress), waits a random fraction of a second more so the cancel lands anywhere in
the worker's check interval, then cancels and watches the child in /proc until it has exited.
Prints each run and the p50/max of the cancel answer and of cancel → child exit (Linux only).

    python -m bench.cancel [--runs 20] [--seconds 180]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import burst  # noqa: E402


def long_wav(seconds: float, path: Path, sample_rate: int = 44100) -> bytes:
    """A stereo mixture (a tone, its harmonics, noise bursts): real work for the dsp engine."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(0.1 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 6))
    beats = (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.normal(0, 0.3, len(t))
    audio = np.stack([tone + beats, 0.8 * tone + beats], axis=1).astype(np.float32)
    sf.write(path, audio, sample_rate, subtype="PCM_16")
    return path.read_bytes()


def server_pid(port: int) -> int:
    """The `manage.py serve` process on `port` (its worker thread owns the child)."""
    wanted = f"serve\0{burst.HOST}:{port}\0".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and wanted in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    raise RuntimeError(f"no manage.py serve on port {port}")


def separation_children(server_pid: int) -> set[int]:
    """The server's multiprocessing children but its resource tracker."""
    found = set()
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:  # a request thread that just ended
            continue
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.add(int(pid))
    return found


def exited(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def one_run(port: int, secret: str, body: bytes, content_type: str, server_pid: int) -> dict:
    status, job = burst.request(port, "POST", "/v1/jobs", secret, body, content_type)
    assert status == 201, job
    job_id = job["id"]
    deadline = time.monotonic() + 120
    while True:  # separating: the child reported the decoded audio and the engine started
        job = burst.request(port, "GET", f"/v1/jobs/{job_id}", secret)[1]
        children = separation_children(server_pid)
        if job["progress"] >= 2 and len(children) == 1:
            break
        assert job["status"] == "queued" and time.monotonic() < deadline, job
        time.sleep(0.05)
    (pid,) = children
    time.sleep(random.uniform(0, 1))
    start = time.perf_counter()
    status, answer = burst.request(port, "POST", f"/v1/jobs/{job_id}/cancel", secret)
    answered = time.perf_counter() - start
    assert status == 200 and answer["error"]["type"] == "canceled", answer
    while not exited(pid):
        assert time.perf_counter() - start < 30, "the child is still running"
        time.sleep(0.001)
    exit_s = time.perf_counter() - start
    return {"answer_s": answered, "exit_s": exit_s, "progress": job["progress"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180, help="length of the track")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = burst.server_env(
            Path(folder) / "var",
            BTRO_FREE_CREDITS="100000",
            BTRO_RATE_POLL="1000/s",
            BTRO_WORKER_THREADS="1",
        )
        burst.manage("migrate", "--noinput", env=env)
        secret = burst.accounts_create(env, ["bench@example.com"], 1)["bench@example.com"][0]
        wav = long_wav(args.seconds, Path(folder) / "track.wav")
        body, content_type = burst.multipart({"tier": "pro"}, "track.wav", wav)
        runs = []
        with burst.serving(env, Path(folder) / "serve.log") as port:
            pid = server_pid(port)
            for i in range(args.runs):
                runs.append(one_run(port, secret, body, content_type, pid))
                print(f"run {i + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()))

    def p50_max(name: str) -> str:
        values = [run[name] for run in runs]
        return f"p50 {statistics.median(values):.3f} s, max {max(values):.3f} s"

    print(
        f"{args.runs} cancels of a running dsp job ({args.seconds:.0f} s track, pro): "
        f"cancel answered {p50_max('answer_s')}; cancel -> child exited {p50_max('exit_s')}"
    )


if __name__ == "__main__":
    main()
