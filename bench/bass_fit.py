"""Fit the dsp engine's bass pitch weights (BASS_NOW, BASS_HELD, BASS_REGISTER) on the devset's
tuning parts, and print them with the pitch accuracy they give on every part.

    python -m bench.bass_fit [--parts tune tune2 tune3] [--report heldout] [--tracks 16]

Not a test. For each song the engine separates the mixture, keeping what its bass pitch is
found on, and the song's bass stem alone, whose pitch (the hand-set salience of
_harmonic_pitch) stands in for the true one. Each candidate is scored as the engine scores it
(see dsp._bass_pitch); the fit takes the softmax of the scores over the candidates and
minimises the expected cost of the pitch, weighted by the bass's energy in the frame: 0 within
a third of a semitone of the true pitch, 0.7 an octave above (its comb still holds the even
partials), 0.5 an octave below, 1 elsewhere; where the bass is silent (under 5 % of its mean
energy), 1 away from what the hand-set salience picks on the mixture. The scores are scaled
by 3 in the softmax, and the weights start from the hand-set salience's.
Songs are bench/devset.py's, cached under var/bench/devset.
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import numpy as np
import scipy.optimize
import soundfile as sf
from scipy.ndimage import median_filter, uniform_filter1d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import devset  # noqa: E402
from jobs.separation import dsp  # noqa: E402
from jobs.separation.audio import decode  # noqa: E402

UP, DOWN, SCALE, SILENT = 0.7, 0.5, 3.0, 0.05


def _inputs(engine: dsp.DspEngine, audio: np.ndarray, rate: int) -> list[tuple]:
    """What _bass_pitch was given for each chunk of `audio`: (magnitude, freqs, frame_s)."""
    seen: list[tuple] = []
    real = dsp._bass_pitch

    def spy(harmonic, freqs, frame_s):
        seen.append((harmonic.copy(), freqs.copy(), frame_s))
        return real(harmonic, freqs, frame_s)

    with mock.patch.object(dsp, "_bass_pitch", spy):
        engine.separate(audio, rate, "pro")
    return seen


def _hand(mag: np.ndarray, freqs: np.ndarray, frame_s: float) -> np.ndarray:
    return dsp._harmonic_pitch(mag, freqs, frame_s, (dsp.F0_LO, dsp.F0_HI), dsp.HARMONICS)


def _index(cands: np.ndarray, hz: np.ndarray) -> np.ndarray:
    return np.abs(np.log2(cands[:, None] / hz[None, :])).argmin(axis=0)


def design(mag: np.ndarray, freqs: np.ndarray, frame_s: float, cands: np.ndarray) -> np.ndarray:
    """The engine's features of each candidate and their held mean, (36, candidates, frames):
    what dsp._bass_scores weighs by BASS_NOW and BASS_HELD."""
    feats = dsp._bass_features(mag, freqs, cands)
    held = uniform_filter1d(feats, dsp._bass_held_frames(frame_s), axis=2, mode="nearest")
    return np.concatenate([feats, held])


def song_data(engine: dsp.DspEngine, song: Path) -> list[dict]:
    """Per chunk: features (with their held means) and, per frame, the true candidate, the
    hand-set pick on the mixture and the bass's energy over its mean."""
    mix, rate = decode(song / "mixture.wav")
    bass = sf.read(song / "bass.wav", dtype="float32", always_2d=True)[0]
    cands = dsp._pitch_candidates(dsp.F0_LO, dsp.F0_HI)
    out = []
    for (mag, freqs, frame_s), (alone, _, _) in zip(
        _inputs(engine, mix, rate), _inputs(engine, bass, rate), strict=True
    ):
        energy = np.square(alone).sum(axis=0)
        out.append(
            {
                "feats": design(mag, freqs, frame_s, cands),
                "truth": _index(cands, _hand(alone, freqs, frame_s)),
                "hand": _index(cands, _hand(mag, freqs, frame_s)),
                "energy": energy / max(float(energy.mean()), 1e-20),
                "frame_s": frame_s,
            }
        )
    return out


def scores(weights: np.ndarray, feats: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """(candidates, frames): as dsp._bass_pitch scores, before its median."""
    n = len(feats)
    return np.tensordot(weights[:n], feats, axes=1) + np.tensordot(weights[n:], reg, axes=1)


def costs(chunk: dict, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's cost of each candidate, (candidates, frames), and the frame's weight."""
    at = np.arange(count)[:, None]
    silent = chunk["energy"] < SILENT
    off = at - chunk["truth"][None, :]
    cost = np.ones((count, len(silent)), dtype=np.float32)
    cost[np.abs(off - 36) <= 1] = UP
    cost[np.abs(off + 36) <= 1] = DOWN
    cost[np.abs(off) <= 1] = 0.0
    away = (np.abs(at - chunk["hand"][None, :]) > 1).astype(np.float32)
    cost[:, silent] = away[:, silent]
    return cost, np.where(silent, 1.0, chunk["energy"])


def fit(chunks: list[dict], reg: np.ndarray, start: np.ndarray, step: int = 3) -> np.ndarray:
    """The weights minimising the energy-weighted expected cost (every `step`-th frame)."""
    count = reg.shape[1]
    parts = []
    for c in chunks:
        each, by = costs(c, count)
        parts.append((c["feats"][:, :, ::step], each[:, ::step], by[::step]))
    feats = np.concatenate(
        [np.concatenate([f, np.broadcast_to(reg, (2, *f.shape[1:]))]) for f, _, _ in parts], axis=2
    )
    cost = np.concatenate([c for _, c, _ in parts], axis=1)
    weight = np.concatenate([w for _, _, w in parts])
    weight /= weight.sum()
    flat = feats.reshape(len(feats), -1)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = (w @ flat).reshape(cost.shape) * SCALE
        p = np.exp(s - s.max(axis=0))
        p /= p.sum(axis=0)
        expected = (p * cost).sum(axis=0)
        grad = p * (cost - expected) * weight * SCALE
        return float(weight @ expected + 1e-4 * w @ w), flat @ grad.reshape(-1) + 2e-4 * w

    found = scipy.optimize.minimize(
        objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 300}
    )
    return found.x


def accuracy(chunks: list[dict], weights: np.ndarray, reg: np.ndarray) -> float:
    """The bass's energy-weighted share of frames whose pitch is the true one (±1/3 semitone)."""
    right = total = 0.0
    for c in chunks:
        best = np.argmax(scores(weights, c["feats"], reg), axis=0)
        size = dsp._odd(0.1 / c["frame_s"])
        best = median_filter(best, size=size, mode="nearest")
        right += float(c["energy"] @ (np.abs(best - c["truth"]) <= 1))
        total += float(c["energy"].sum())
    return right / total


def main(argv: list[str] | None = None) -> None:
    args = devset.fit_parser(__doc__).parse_args(argv)
    engine = dsp.DspEngine(workers=1)
    data = {
        part: [c for song in songs for c in song_data(engine, song)]
        for part, songs in devset.fit_songs(args).items()
    }
    reg = dsp._bass_register(dsp._pitch_candidates(dsp.F0_LO, dsp.F0_HI))[:, :, None]
    # The hand-set salience of _harmonic_pitch as the starting point, nothing held.
    start = np.zeros(2 * len(dsp.BASS_NOW) + 2)
    for k in range(1, dsp.HARMONICS + 1):
        start[k - 1], start[dsp.HARMONICS + k - 1] = k**-0.5, -dsp.PITCH_GAP * k**-0.5
    start *= 3.0
    weights = fit([c for p in args.parts for c in data[p]], reg, start)
    now = np.concatenate([dsp.BASS_NOW, dsp.BASS_HELD, dsp.BASS_REGISTER])
    for part, chunks in data.items():
        print(
            f"{part:8s} pitch right: fitted {accuracy(chunks, weights, reg):.1%}, "
            f"the engine's {accuracy(chunks, now, reg):.1%}"
        )
    n = len(dsp.BASS_NOW)
    for name, values in (
        ("BASS_NOW", weights[:n]),
        ("BASS_HELD", weights[n : 2 * n]),
        ("BASS_REGISTER", weights[2 * n :]),
    ):
        print(f"{name} = ({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
