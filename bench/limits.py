"""Peak memory of the separation process for the worst inputs the limits accept, and for
files whose headers lie about their length.

Not a test. Each case runs as a job's task does (jobs.services.job_run): a fresh separation
child, the dsp engine, the default duration, decoded-size and memory limits; the figure is
the child's own peak resident set (VmHWM), read before it exits.

    python -m bench.limits                     # every case (about 40 min on 2 cores)
    python -m bench.limits --only 145s 8ch     # cases whose name holds each word
"""

from __future__ import annotations

import argparse
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.separation import AudioError, SeparationError  # noqa: E402
from jobs.separation.buffers import DISK_BYTES  # noqa: E402
from jobs.separation.runner import Decoded, SeparationProcess, Task  # noqa: E402

# The defaults of btro/settings.py (the bench runs without Django).
MAX_SECONDS = 20 * 60
MAX_SAMPLES = 20 * 60 * 96_000 * 2
MEMORY_MB = 3072
CREDITS_PER_MINUTE = {"basic": 1, "vocal_remover": 1, "pro": 2, "studio": 3}


def write_tone(path: Path, seconds: float, channels: int, rate: int) -> Path:
    """Tones with a little noise, as 16-bit FLAC, written block by block (once)."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    frames = int(seconds * rate)
    with sf.SoundFile(str(path), "w", rate, channels, format="FLAC", subtype="PCM_16") as out:
        for start in range(0, frames, 1 << 18):
            t = (np.arange(start, min(frames, start + (1 << 18))) / rate)[:, None]
            f0 = 110.0 * (1 + np.arange(channels))[None, :]
            block = 0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(np.pi * t))
            block += 3e-4 * rng.standard_normal(block.shape)
            out.write(block.astype(np.float32))
    return path


def lying_mkv(path: Path, seconds: float, claims: float, channels: int, rate: int) -> Path:
    """The issue's reproduction: FLAC in Matroska whose Duration says `claims` seconds."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=220:r={rate}:d={seconds}"]
    subprocess.run([*cmd, "-ac", str(channels), "-c:a", "flac", str(path)], check=True)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x44\x89\x88")
    data[at + 3 : at + 11] = struct.pack(">d", claims * 1000.0)
    path.write_bytes(bytes(data))
    return path


def lying_m4a(path: Path, seconds: float, claims: float) -> Path:
    """An MP4 (ALAC: quick to make) whose mvhd and mdhd durations say `claims` seconds."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=220:r=44100:d={seconds}"]
    subprocess.run([*cmd, "-ac", "2", "-c:a", "alac", str(path)], check=True)
    data = bytearray(path.read_bytes())
    for box in (b"mvhd", b"mdhd"):
        at = data.index(box)
        assert data[at + 4] == 0, "version 0 boxes"
        (scale,) = struct.unpack(">I", data[at + 16 : at + 20])
        data[at + 20 : at + 24] = struct.pack(">I", int(claims * scale))
    path.write_bytes(bytes(data))
    return path


def cases(work: Path) -> list[tuple[str, str, Callable[[], Path]]]:
    """(name, tier, maker) for each input; makers run only for the cases asked for."""
    at_limit = MAX_SAMPLES / 8 / 192_000  # 150 s of 8 channels at 192 kHz
    out = [
        ("flac 145s 8ch 192kHz", "basic", lambda: write_tone(work / "a.flac", 145, 8, 192_000)),
        (
            "flac 8ch 192kHz at the decoded-size limit",
            "studio",
            lambda: write_tone(work / "b.flac", at_limit, 8, 192_000),
        ),
    ]
    # Just under buffers.DISK_BYTES, the decoded input stays in private memory.
    in_memory = (DISK_BYTES - (1 << 20)) / 4 / 8 / 192_000
    out.append(
        (
            "flac 8ch 192kHz decoded just under the temp-file threshold",
            "studio",
            lambda: write_tone(work / "d.flac", in_memory, 8, 192_000),
        )
    )
    for tier in CREDITS_PER_MINUTE:
        out.append(
            (
                f"flac 20min 2ch 44.1kHz {tier}",
                tier,
                lambda: write_tone(work / "c.flac", 1200, 2, 44_100),
            )
        )
    out += [
        (
            "lying mkv 600s 2ch 44.1kHz claims 1s",
            "studio",
            lambda: lying_mkv(work / "short.mkv", 600, 1.0, 2, 44_100),
        ),
        (
            "lying mkv 8ch 192kHz 300s claims 1s (past the size limit)",
            "studio",
            lambda: lying_mkv(work / "wide.mkv", 300, 1.0, 8, 192_000),
        ),
        (
            "lying m4a 1500s 2ch claims 10s (past the length limit)",
            "studio",
            lambda: lying_m4a(work / "long.m4a", 1500, 10.0),
        ),
    ]
    return out


def peak_rss_mb(pid: int) -> float:
    """Process `pid`'s own peak resident set (VmHWM, MB); NaN where /proc has none."""
    try:
        rows = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return math.nan
    for row in rows:
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return math.nan


def run_case(path: Path, tier: str, memory_mb: int, out: Path) -> tuple[str, float, float, str]:
    """(outcome, decoded seconds, peak RSS MB, credits) for one task in a fresh child."""
    child = SeparationProcess()
    heard: list[Decoded] = []
    task = Task(
        input_path=str(path),
        tier=tier,
        engine="dsp",
        out_dir=str(out),
        max_seconds=MAX_SECONDS,
        max_samples=MAX_SAMPLES,
        memory_mb=memory_mb,
    )
    try:
        child.run(task, timeout=3 * 3600, on_decoded=heard.append)
        outcome = "separated"
    except (AudioError, SeparationError) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    try:
        pid = child.pid
        peak = peak_rss_mb(pid) if pid is not None else math.nan
    finally:
        child.stop()
    seconds = heard[0].seconds if heard else math.nan
    credits = (
        str(CREDITS_PER_MINUTE[tier] * max(1, math.ceil(seconds / 60))) if heard else "refunded"
    )
    return outcome, seconds, peak, credits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="words each case (name, tier) holds")
    parser.add_argument("--memory-mb", type=int, default=MEMORY_MB)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed for the lying-container cases.")
    print(f"limits: {MAX_SECONDS} s, {MAX_SAMPLES:,} samples, budget {args.memory_mb} MB")
    print(f"{'case':58s} {'tier':13s} {'decoded s':>9s} {'credits':>8s} {'peak MB':>8s} {'s':>6s}")
    with tempfile.TemporaryDirectory(prefix="btro-limits-") as tmp:
        work = Path(tmp)
        for name, tier, make in cases(work):
            if not all(word in f"{name} {tier}" for word in args.only):
                continue
            path = make()
            out = Path(tempfile.mkdtemp(dir=work))
            began = time.monotonic()
            outcome, seconds, peak, credits = run_case(path, tier, args.memory_mb, out)
            took = time.monotonic() - began
            shutil.rmtree(out)
            print(f"{name:58s} {tier:13s} {seconds:9.1f} {credits:>8s} {peak:8.0f} {took:6.0f}")
            if outcome != "separated":
                print(f"    -> {outcome}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
