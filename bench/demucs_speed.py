"""Demucs engine speed and memory against demucs's own CLI, on a full-size random htdemucs.

    python bench/demucs_speed.py [--seconds 60] [--runs 3] [--memory-seconds 600]

Builds the published htdemucs architecture with random weights (real architecture, so real
timing) in a temporary model folder, writes one stereo 44.1 kHz WAV, then times whole
processes, each reading the WAV, loading the model, separating and writing float WAV stems:
  ours:   DemucsEngine(tier) + jobs.separation.audio.encode
  demucs: python -m demucs -n htdemucs --repo DIR (demucs.api.Separator inside)
with the same settings (shifts 0, overlap 0.25, the model's segment, torch's default threads).
Peak memory is the child's ru_maxrss on a longer track.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_track(path: Path, seconds: float, rate: int = 44100) -> None:
    """Stereo noise with tones and beats: content does not change the model's cost."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = rate * 10
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for start in range(0, int(seconds * rate), block):
            n = min(block, int(seconds * rate) - start)
            t = (start + np.arange(n)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
            beat = 0.3 * rng.standard_normal(n) * (np.mod(t, 0.5) < 0.05)
            noise = 0.05 * rng.standard_normal((n, 2))
            out.write((noise + (tone + beat)[:, None]).astype(np.float32))


def run_child(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident memory (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def ours_command(track: Path, out: Path, model_dir: Path, tier: str) -> list[str]:
    return [sys.executable, __file__, "--child", str(track), str(out), str(model_dir), tier]


def demucs_command(track: Path, out: Path, model_dir: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "demucs", "-n", "htdemucs", "--repo", str(model_dir)),
        *("-d", "cpu", "--shifts", "0", "--overlap", "0.25", "--float32", "-o", str(out)),
        str(track),
    ]


def child(track: str, out: str, model_dir: str, tier: str) -> None:
    """One separation the way a worker does it: decode, separate, encode each stem."""
    from jobs.separation.audio import decode, encode
    from jobs.separation.demucs_engine import DemucsEngine

    audio, rate = decode(track)
    stems = DemucsEngine(model_dir, device="cpu").separate(audio, rate, tier)
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, stem in stems.items():
        encode(stem, rate, Path(out) / f"{name}.wav")


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:7.1f} s ± {sd:4.1f} (min {min(values):.1f}, max {max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="timed track length")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="0 to skip")
    parser.add_argument(
        "--memory-model",
        choices=("full", "tiny"),
        default="full",
        help="tiny: the test model, for the part of memory that grows with track length",
    )
    parser.add_argument("--tier", default="pro")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import torch

    from tests.neural_models import write_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = write_model_dir(tmp_path / "models", names=("htdemucs",), full_size=True)
        track = tmp_path / "track.wav"
        write_track(track, args.seconds)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
        )
        print(f"{args.seconds:.0f} s stereo 44.1 kHz, tier {args.tier}, full-size htdemucs")

        # Wall time is what a user waits; CPU time is steadier on a machine shared with others.
        ours: list[float] = []
        theirs: list[float] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        for run in range(args.runs):
            # Alternate the order so drift in machine load hits both sides alike.
            pair = [
                ("ours", ours_command(track, tmp_path / f"o{run}", model_dir, args.tier)),
                ("demucs", demucs_command(track, tmp_path / f"d{run}", model_dir)),
            ]
            for name, command in pair if run % 2 == 0 else pair[::-1]:
                seconds, cpu, peak = run_child(command)
                (ours if name == "ours" else theirs).append(seconds)
                (ours_cpu if name == "ours" else theirs_cpu).append(cpu)
                print(
                    f"  run {run + 1} {name:6s} wall {seconds:6.1f} s  cpu {cpu:6.1f} s  "
                    f"peak {peak:6.0f} MiB",
                    flush=True,
                )
            ratios.append(ours[-1] / theirs[-1])
            cpu_ratios.append(ours_cpu[-1] / theirs_cpu[-1])
        if args.runs:
            print(f"wall ours   {spread(ours)}")
            print(f"wall demucs {spread(theirs)}")
            print(f"cpu  ours   {spread(ours_cpu)}")
            print(f"cpu  demucs {spread(theirs_cpu)}")
            for label, values in (("wall", ratios), ("cpu", cpu_ratios)):
                print(
                    f"ratio ours/demucs ({label}) {statistics.mean(values):.3f} "
                    f"(per run {', '.join(f'{r:.3f}' for r in values)}; target <= 1.1)"
                )
            print(f"speed ours {args.seconds / statistics.mean(ours):.2f} s of audio per second")

        if args.memory_seconds:
            long_track = tmp_path / "long.wav"
            write_track(long_track, args.memory_seconds)
            if args.memory_model == "tiny":
                model_dir = write_model_dir(tmp_path / "tiny", names=("htdemucs",))
            print(f"memory: {args.memory_model} htdemucs")
            for name, command in [
                ("ours", ours_command(long_track, tmp_path / "ol", model_dir, args.tier)),
                ("demucs", demucs_command(long_track, tmp_path / "dl", model_dir)),
            ]:
                seconds, cpu, peak = run_child(command)
                print(
                    f"{args.memory_seconds:.0f} s track, {name:6s}: wall {seconds:6.1f} s, "
                    f"cpu {cpu:6.1f} s, peak RSS {peak:.0f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
