"""A file_url job's overhead against the same file uploaded, on a real `manage.py serve`.

Not a test (tests/jobs/test_file_url.py checks the behaviour). A 10 MB WAV is served from
loopback by tests/file_server.py; each round creates one job by multipart upload and one by
file_url (alternating which goes first), polls each until it succeeds, and records the time
from the POST to `succeeded` and the POST's own latency. The engine is the instant fake one
by default, so the figures are the input's path alone (upload, or fetch + probe + store);
`--engine dsp` adds a real separation, whose time the overhead is then set against.

    python -m bench.file_url                  # 7 rounds, 10 MB, fake engine
    python -m bench.file_url --rounds 5 --engine dsp
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import burst  # noqa: E402
from tests.file_server import serving  # noqa: E402

ENGINES = {"fake": "tests.fake_engines:SplitEngine", "dsp": "dsp"}


def wav_of(megabytes: float) -> bytes:
    """Stereo 16-bit 44.1 kHz noise-like music of about `megabytes` MB."""
    frames = int(megabytes * 2**20 / 4)
    t = np.arange(frames) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(1).standard_normal(
        frames
    )
    audio = np.stack([left, np.roll(left, 441)], axis=1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, audio, 44100, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def until_done(port: int, key: str, job_id: str, poll: float) -> dict:
    while True:
        status, job = burst.request(port, "GET", f"/v1/jobs/{job_id}", key)
        assert status == 200, job
        if job["status"] != "queued":
            assert job["status"] == "succeeded", job
            return job
        time.sleep(poll)


def one_job(
    port: int, key: str, body: bytes, content_type: str, poll: float
) -> tuple[float, float]:
    """(seconds for the POST, seconds from the POST to succeeded)."""
    started = time.perf_counter()
    status, job = burst.request(port, "POST", "/v1/jobs", key, body, content_type)
    created = time.perf_counter()
    assert status == 201, job
    until_done(port, key, job["id"], poll)
    return created - started, time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, min {min(values):.3f}, max {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="fake")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls")
    args = parser.parse_args()

    data = wav_of(args.megabytes)
    upload_body, upload_type = burst.multipart({"tier": "basic"}, "track.wav", data)
    with tempfile.TemporaryDirectory() as folder, serving() as files:
        url_body = urlencode({"tier": "basic", "file_url": files.add("track.wav", data)}).encode()
        url_type = "application/x-www-form-urlencoded"
        env = burst.server_env(
            Path(folder) / "var",
            BTRO_ENGINE=ENGINES[args.engine],
            BTRO_FETCH_ALLOW_PRIVATE="true",
            BTRO_FREE_CREDITS="1000000",
            BTRO_RATE_POLL="100000/m",
            BTRO_RATE_READ="100000/m",
            BTRO_RATE_CREATE="100000/m",
        )
        burst.manage("migrate", "--noinput", env=env)
        key = burst.accounts_create(env, ["bench@example.com"], 1)["bench@example.com"][0]
        with burst.serving(env, Path(folder) / "serve.log") as port:
            one_job(port, key, upload_body, upload_type, args.poll)  # warm: the child starts
            rows: dict[str, list[tuple[float, float]]] = {"upload": [], "file_url": []}
            for i in range(args.rounds):
                order = [("upload", upload_body, upload_type), ("file_url", url_body, url_type)]
                for name, body, content_type in order if i % 2 == 0 else order[::-1]:
                    rows[name].append(one_job(port, key, body, content_type, args.poll))
    print(f"{len(data) / 2**20:.1f} MB WAV, engine {args.engine}, {args.rounds} rounds, seconds:")
    for name, runs in rows.items():
        posts, totals = spread([p for p, _ in runs]), spread([t for _, t in runs])
        print(f"  {name:9} POST {posts}; to succeeded {totals}")
    extra = [u[1] - f[1] for u, f in zip(rows["file_url"], rows["upload"], strict=True)]
    ratio = [u[1] / f[1] for u, f in zip(rows["file_url"], rows["upload"], strict=True)]
    print(f"  file_url - upload, to succeeded, paired by round: {spread(extra)}")
    print(f"  file_url / upload, to succeeded, paired by round: {spread(ratio)}")


if __name__ == "__main__":
    main()
