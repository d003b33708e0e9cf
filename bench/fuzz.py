"""Long fuzz run of the upload decoder (`probe` then `decode`) with atheris (libFuzzer).

Not a test: the fast property test is tests/separation/test_fuzz_decoder.py. Starts from
the same seeds (WAV, FLAC, MP3, OGG Vorbis/Opus), restarts the fuzzer after each finding,
and prints executions, crashes (any exception but AudioError, or a native crash), hangs
(over --timeout s), out-of-memory stops and the peak RSS.

    python -m bench.fuzz --seconds 600
    python -m bench.fuzz --seconds 300 --no-ffmpeg   # libsndfile paths only: many more exec/s
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "fuzz"


def seeds() -> dict[str, bytes]:
    import numpy as np
    import soundfile as sf

    def enc(fmt: str, subtype: str | None, seconds: float, rate: int, channels: int) -> bytes:
        t = np.arange(int(seconds * rate)) / rate
        cols = [0.3 * np.sin(2 * np.pi * (330 + 110 * c) * t) for c in range(channels)]
        buf = io.BytesIO()
        sf.write(buf, np.stack(cols, 1).astype(np.float32), rate, format=fmt, subtype=subtype)
        return buf.getvalue()

    return {
        "wav16": enc("WAV", "PCM_16", 0.1, 8000, 1),
        "wavfloat": enc("WAV", "FLOAT", 0.05, 8000, 2),
        "rf64": enc("RF64", "PCM_24", 0.05, 8000, 1),
        "flac": enc("FLAC", "PCM_16", 0.2, 8000, 1),
        "mp3": enc("MP3", None, 0.3, 16000, 1),
        "ogg": enc("OGG", "VORBIS", 0.3, 16000, 1),
        "opus": enc("OGG", "OPUS", 0.2, 16000, 1),
    }


def child(argv: list[str]) -> None:
    """The fuzz target, run by libFuzzer in this process."""
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports():
        from jobs.separation import AudioError
        from jobs.separation.audio import decode, probe

    fd, path = tempfile.mkstemp(prefix="btro-fuzz-")
    os.close(fd)

    def target(data: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            probe(path)
            decode(path, max_seconds=60.0)
        except AudioError:
            pass

    atheris.Setup(argv, target)
    atheris.Fuzz()


_KINDS = [
    ("hang", re.compile(r"ERROR: libFuzzer: timeout")),
    ("oom", re.compile(r"ERROR: libFuzzer: out-of-memory")),
    ("crash", re.compile(r"Uncaught Python exception|ERROR: libFuzzer: deadly signal|ERROR: ")),
]


def run_atheris(seconds: float, timeout: int, rss_mb: int, ffmpeg: bool) -> dict:
    corpus = OUT / "corpus"
    artifacts = OUT / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (corpus / f"seed-{name}").write_bytes(data)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if not ffmpeg:  # hide ffprobe/ffmpeg: the decoder then refuses what libsndfile can't read
        hidden = Path(tempfile.mkdtemp())
        (hidden / "python").symlink_to(sys.executable)
        env["PATH"] = str(hidden)
    totals = {"executions": 0, "crash": 0, "hang": 0, "oom": 0, "peak_rss_mb": 0, "runs": 0}
    findings: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 2:
        cmd = [
            sys.executable,
            "-m",
            "bench.fuzz",
            "--child",
            str(corpus),
            f"-max_total_time={int(left)}",
            f"-timeout={timeout}",
            f"-rss_limit_mb={rss_mb}",
            "-max_len=16384",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        log = proc.stderr + proc.stdout
        totals["runs"] += 1
        stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", log))
        execs = int(stats.get("number_of_executed_units", 0))
        if not execs:  # killed on a finding before the final stats: take the last status line
            counts = re.findall(r"^#(\d+)\s", log, re.M)
            execs = int(counts[-1]) if counts else 0
        totals["executions"] += execs
        rss = [int(x) for x in re.findall(r"rss: (\d+)Mb", log)]
        totals["peak_rss_mb"] = max(
            totals["peak_rss_mb"], int(stats.get("peak_rss_mb", 0)), *rss, 0
        )
        if proc.returncode != 0:
            kind = next((k for k, pattern in _KINDS if pattern.search(log)), "crash")
            totals[kind] += 1
            where = re.findall(r"Test unit written to (\S+)", log)
            detail = re.findall(r"(?m)^(?:\w+Error|\w+Exception|[A-Z]\w+): .*$", log)
            findings.append(f"{kind}: {where[-1] if where else '?'} {detail[-1] if detail else ''}")
            if kind == "crash" and not where:
                findings.append(log[-1500:])
                break  # the harness itself failed: do not spin
    if not ffmpeg:
        shutil.rmtree(hidden, ignore_errors=True)
    return {**totals, "findings": findings}


def run_hypothesis(examples: int) -> dict:
    """Fallback without atheris: the property test with many more examples."""
    env = {**os.environ, "BTRO_FUZZ_EXAMPLES": str(examples)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django"]
    cmd.append("tests/separation/test_fuzz_decoder.py")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return {"executions": examples * 8, "failed": proc.returncode != 0, "log": proc.stdout[-3000:]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child([sys.argv[0], *sys.argv[2:]])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--timeout", type=int, default=5, help="a hang, in seconds")
    parser.add_argument("--rss-mb", type=int, default=2048, help="out of memory past this")
    parser.add_argument("--no-ffmpeg", dest="ffmpeg", action="store_false")
    parser.add_argument("--hypothesis", action="store_true", help="use hypothesis, not atheris")
    parser.add_argument("--examples", type=int, default=2000, help="with --hypothesis")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        import atheris  # noqa: F401

        have_atheris = True
    except ImportError:
        have_atheris = False
    if args.hypothesis or not have_atheris:
        result = run_hypothesis(args.examples)
        print(f"hypothesis: {result['executions']} executions, failed={result['failed']}")
        print(result["log"])
        return
    totals = run_atheris(args.seconds, args.timeout, args.rss_mb, args.ffmpeg)
    wall = time.monotonic() - started
    print(
        f"atheris, ffmpeg {'on' if args.ffmpeg else 'off'}: {totals['executions']} executions "
        f"in {wall:.0f} s ({totals['executions'] / wall:.1f}/s), {totals['runs']} fuzzer run(s); "
        f"crashes {totals['crash']}, hangs {totals['hang']} (> {args.timeout} s), "
        f"out-of-memory {totals['oom']} (> {args.rss_mb} MB); peak RSS {totals['peak_rss_mb']} MB"
    )
    for finding in totals["findings"]:
        print("  " + finding)
    print(f"corpus and artifacts: {OUT}")


if __name__ == "__main__":
    main()
