"""Demucs engine speed, output and memory against demucs.api.Separator, on a full-size random
htdemucs.

    python bench/demucs_speed.py [--seconds 60] [--runs 3] [--memory-seconds 600]
                                 [--device cpu|cuda] [--batch N] [--streams N]
                                 [--memory-model full|tiny]

Needs torch, demucs, numpy and soundfile, and this repository checked out (nothing of Django).
Builds the published htdemucs architecture with random weights (real architecture, so real
timing) in a temporary model folder, then separates one stereo 44.1 kHz track with both, same
model and settings (shifts 0, overlap 0.25, the model's segment):
  ours:   DemucsEngine(device, batch, streams).separate(audio, 44100, "pro")
  demucs: demucs.api.Separator("htdemucs", device, shifts=0, overlap=0.25).separate_tensor
each run in a process of its own (the engine's CPU settings are the process's: threads, the
attention kernel, the heap), timed after loading and a 10 s warm-up, taking turns (the order
alternates each run, so drift in machine load hits both alike), and reports the ratio of
times per run (median, range), and the largest absolute difference of their stems. Peak
memory is each one's process's own peak (VmHWM) separating a longer track, no warm-up.
Every track is read from a WAV file; stems are written to float WAV files.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 44100
MODEL = "htdemucs"


def track(seconds: float, rate: int = RATE) -> Any:
    """Stereo noise with tones and beats, (frames, 2) float32: content does not change cost."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    beat = 0.3 * rng.standard_normal(t.size) * (np.mod(t, 0.5) < 0.05)
    noise = 0.05 * rng.standard_normal((t.size, 2))
    return (noise + (tone + beat)[:, None]).astype(np.float32)


def ours(model_dir: Path, device: str, batch: int, streams: int) -> Any:
    """(frames, 2) float32 → {stem: (frames, 2)}, as the worker's engine does it."""
    from jobs.separation.demucs_engine import DemucsEngine

    engine = DemucsEngine(model_dir, device=device, batch=batch, streams=streams)
    return lambda audio: engine.separate(audio, RATE, "pro")


def theirs(model_dir: Path, device: str) -> Any:
    """(frames, 2) float32 → {stem: (frames, 2)} through demucs.api.Separator."""
    import numpy as np
    import torch
    from demucs.api import Separator

    separator = Separator(MODEL, repo=model_dir, device=device, shifts=0, overlap=0.25)

    def separate(audio: Any) -> dict[str, Any]:
        _, stems = separator.separate_tensor(torch.from_numpy(audio.T.copy()), RATE)
        return {name: np.ascontiguousarray(s.numpy().T) for name, s in stems.items()}

    return separate


def timed(separate: Any, audio: Any, device: str) -> tuple[float, dict[str, Any]]:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    stems = separate(audio)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, stems


def child(
    side: str, wav: str, model_dir: str, device: str, batch: str, streams: str, out: str
) -> None:
    """One separation in a process of its own: read the WAV, separate, write float stems.
    With `out` ending in "-timed", a warm-up on the first 10 s first, and the separation's
    seconds written to out/seconds."""
    import soundfile as sf

    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == RATE
    if side == "ours":
        separate = ours(Path(model_dir), device, int(batch), int(streams))
    else:
        separate = theirs(Path(model_dir), device)
    warm = out.endswith("-timed")
    if warm:  # loads, allocator and kernel choices
        separate(audio[: 10 * RATE])
    seconds, stems = timed(separate, audio, device)
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, stem in stems.items():
        sf.write(str(Path(out) / f"{name}.wav"), stem, RATE, subtype="FLOAT")
    if warm:
        (Path(out) / "seconds").write_text(f"{seconds}")
    from bench.limits import peak_rss_mb  # after the peak: its imports do not raise it

    (Path(out) / "peak_mib").write_text(f"{peak_rss_mb(os.getpid())}")  # KiB / 1024


def run_child(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one child process: its own address
    space's (VmHWM, which it writes to its out folder), not wait4's ru_maxrss, which survives
    exec and so counts this process's peak, with torch and the model loaded, too. Where
    /proc has no VmHWM, ru_maxrss it is."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    assert proc.stderr is not None
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    peak = float((Path(args[-1]) / "peak_mib").read_text())
    return seconds, peak if math.isfinite(peak) else usage.ru_maxrss / 1024


def spread(values: list[float], unit: str = "") -> str:
    return (
        f"median {statistics.median(values):.3f}{unit} "
        f"(min {min(values):.3f}, max {max(values):.3f}; "
        f"runs {', '.join(f'{v:.3f}' for v in values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="timed track length")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each, interleaved")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--batch", type=int, default=0, help="ours: segments a call (0: the engine's default)"
    )
    parser.add_argument(
        "--streams", type=int, default=0, help="ours: segments at once (0: the engine's default)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="0 to skip")
    parser.add_argument(
        "--memory-model",
        choices=("full", "tiny"),
        default="full",
        help="tiny: the tests' model, for the part of memory that grows with track length",
    )
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        child(*args.child)
        return

    import numpy as np
    import soundfile as sf
    import torch

    from jobs.separation.demucs_engine import DemucsEngine
    from tests.neural_models import write_model_dir

    defaults = DemucsEngine(ROOT, device=args.device, batch=args.batch, streams=args.streams)
    batch, streams = defaults.batch, defaults.streams  # the engine loads nothing yet
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = write_model_dir(tmp_path / "models", names=(MODEL,), full_size=True)
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} CPUs, device {args.device} ({name}), batch {batch}, "
            f"streams {streams}"
        )
        print(f"{args.seconds:.0f} s stereo 44.1 kHz, tier pro, full-size random {MODEL}")

        def command(side: str, wav: Path, models: Path, out: Path) -> list[str]:
            return [
                *(sys.executable, __file__, "--threads", str(args.threads), "--child", side),
                *(str(wav), str(models)),
                *(args.device, str(batch), str(streams), str(out)),
            ]

        if args.runs:
            wav = tmp_path / "track.wav"
            sf.write(str(wav), track(args.seconds), RATE, subtype="FLOAT")
            times: dict[str, list[float]] = {"ours": [], "demucs": []}
            for run in range(args.runs):
                order = list(times) if run % 2 == 0 else list(times)[::-1]
                for side in order:
                    out = tmp_path / f"{side}-timed"
                    run_child(command(side, wav, model_dir, out))
                    times[side].append(float((out / "seconds").read_text()))
                    print(f"  run {run + 1} {side:6s} {times[side][-1]:7.2f} s", flush=True)
            ratios = [o / d for o, d in zip(times["ours"], times["demucs"], strict=True)]
            stems = {
                side: {
                    wav.name: sf.read(wav)[0] for wav in (tmp_path / f"{side}-timed").glob("*.wav")
                }
                for side in times
            }
            diff = max(
                float(np.abs(stems["ours"][n] - stems["demucs"][n]).max()) for n in stems["ours"]
            )
            print(f"time ours   {spread(times['ours'], ' s')}")
            print(f"time demucs {spread(times['demucs'], ' s')}")
            print(f"ratio ours/demucs {spread(ratios)}")
            print(f"speed-up demucs/ours {spread([1 / r for r in ratios])}")
            print(f"max abs difference of the stems {diff:.2e} (target < 1e-4)")

        if args.memory_seconds:
            long_track = tmp_path / "long.wav"
            sf.write(str(long_track), track(args.memory_seconds), RATE, subtype="PCM_16")
            if args.memory_model == "tiny":
                model_dir = write_model_dir(tmp_path / "tiny", names=(MODEL,))
            print(f"memory: {args.memory_seconds:.0f} s track, {args.memory_model} {MODEL}")
            for side in ("ours", "demucs"):
                seconds, peak = run_child(command(side, long_track, model_dir, tmp_path / side))
                print(f"  {side:6s}: peak RSS {peak:6.0f} MiB (whole process {seconds:.1f} s)")


if __name__ == "__main__":
    main()
