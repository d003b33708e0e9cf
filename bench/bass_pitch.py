"""The dsp engine's bass pitch on a devset part: how often it is right, and what a right one
would be worth.

    python -m bench.bass_pitch [--devset tune2] [--tracks 16] [--start 0] [--per-song]

Not a test. For each song the engine separates the mixture and, alone, the song's bass stem,
recording the pitch `_bass_pitch` finds each frame. The pitch found on the bass alone stands
in for the true one (the devset keeps no note list). Frames are weighted by the bass's
energy and counted as right (within half a semitone), an octave up, an octave down, or
another note. Then the mixture is separated once more with the bass-alone pitch fed to the
comb ("oracle"): the gap between the bass's SDR with the found pitch and with that one is
what a better pitch tracker can win at most, with the comb, cap and confidence as they are.
Songs are bench/devset.py's, cached under var/bench/devset. `--without drums` (or vocals, ...)
separates the sum of the other stems instead of the mixture: how much of the pitch's error
that stem causes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import devset  # noqa: E402
from bench.engines import load_score  # noqa: E402
from jobs.separation import dsp  # noqa: E402
from jobs.separation.audio import decode  # noqa: E402

SHARES = ("right", "octave up", "octave down", "other note")


def _pitches(engine: dsp.DspEngine, audio: np.ndarray, rate: int) -> tuple[list, dict]:
    """The stems of `audio` at pro, and the pitch tracks _bass_pitch gave (one per chunk)."""
    found: list[np.ndarray] = []
    real = dsp._bass_pitch

    def spy(*args, **kwargs):
        pitch = real(*args, **kwargs)
        found.append(pitch.copy())
        return pitch

    with mock.patch.object(dsp, "_bass_pitch", spy):
        stems = engine.separate(audio, rate, "pro")
    return found, stems


def _fed(engine: dsp.DspEngine, audio: np.ndarray, rate: int, tracks: list) -> np.ndarray:
    """The bass stem of `audio` at pro with each chunk's pitch taken from `tracks`."""
    given = iter(tracks)
    with mock.patch.object(dsp, "_bass_pitch", lambda *args, **kwargs: next(given)):
        return engine.separate(audio, rate, "pro")["bass"]


def shares(found: np.ndarray, truth: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """The bass's energy-weighted shares of frames in each of SHARES, (4,)."""
    hop = len(bass) // len(truth)
    energy = np.square(bass[: hop * len(truth)]).reshape(len(truth), -1).sum(axis=1)
    weight = energy / max(float(energy.sum()), 1e-20)
    semitones = 12 * np.log2(found / truth)
    right = np.abs(semitones) < 0.5
    up, down = np.abs(semitones - 12) < 0.5, np.abs(semitones + 12) < 0.5
    other = ~(right | up | down)
    return np.array([weight[m].sum() for m in (right, up, down, other)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", choices=tuple(devset.FAMILIES), default="tune2")
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--start", type=int, default=0, help="leave out the first songs")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--per-song", action="store_true")
    ap.add_argument("--without", action="append", default=[], choices=devset.STEMS + ("vocals",))
    ap.add_argument("--work", default=str(ROOT / "var" / "bench"))
    args = ap.parse_args(argv)
    songs = devset.songs(Path(args.work) / "devset", args.devset, args.tracks, args.seconds)
    # One chunk at a time, so the pitch tracks come, and are fed back, in chunk order.
    score, engine = load_score(), dsp.DspEngine(workers=1)
    rows = []
    for song in songs[args.start :]:
        mix, rate = decode(song / "mixture.wav")
        for stem in args.without:
            mix = mix - sf.read(song / f"{stem}.wav", dtype="float32", always_2d=True)[0]
        bass = sf.read(song / "bass.wav", dtype="float32", always_2d=True)[0]
        found, stems = _pitches(engine, mix, rate)
        truth, _ = _pitches(engine, bass, rate)
        split = shares(np.concatenate(found), np.concatenate(truth), bass.mean(axis=1))
        sdr = float(score.sdr(bass, stems["bass"]))
        oracle = float(score.sdr(bass, _fed(engine, mix, rate, truth)))
        rows.append((split, sdr, oracle))
        if args.per_song:
            parts = " ".join(f"{name} {v:4.0%}" for name, v in zip(SHARES, split, strict=True))
            print(f"  {song.name} {parts}  bass SDR {sdr:6.2f} -> {oracle:6.2f}", flush=True)
    mean = np.mean([r[0] for r in rows], axis=0)
    sdr, oracle = (float(np.mean([r[i] for r in rows])) for i in (1, 2))
    print(
        f"\nbass pitch on {len(rows)} songs of {args.seconds:g} s (bench/devset.py {args.devset})"
        + "".join(f" without {stem}" for stem in args.without)
    )
    print("  " + ", ".join(f"{name} {v:.0%}" for name, v in zip(SHARES, mean, strict=True)))
    print(f"  bass SDR {sdr:.2f} dB; with the bass-alone pitch {oracle:.2f} ({oracle - sdr:+.2f})")


if __name__ == "__main__":
    main()
