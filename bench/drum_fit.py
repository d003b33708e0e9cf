"""Fit the dsp engine's low-band drum share (DRUM_HIDDEN, DRUM_OUT) on the devset's tuning
parts, and print the weights with the error they give on every part.

    python -m bench.drum_fit [--parts tune tune2 tune3] [--report heldout] [--tracks 16]

Not a test. For each song the engine separates the mixture, keeping the features it gives its
low-band drum share (see dsp._low_drum_features) and the accompaniment's low bins; the truth
is the drums' share of the power of the song's accompaniment stems (drums against bass,
guitar, piano and other), from the engine's own transform. The fit minimises the squared
error of the share, bin by bin, weighted by the accompaniment's power there over what that
error costs each stem's SDR: over the drums' energy, and over the bass's where the bass's comb
(the engine's, under the hand-set split) takes the bin, else over the rest's. So a bin of a
quiet bass counts for as much as a loud kick's. The network is one hidden layer of HIDDEN
tanh units and a logistic output, started from seeded random weights; every STEP-th frame.
Songs are bench/devset.py's, cached under var/bench/devset.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import scipy.optimize
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import devset  # noqa: E402
from jobs.separation import dsp  # noqa: E402
from jobs.separation.audio import decode  # noqa: E402

HIDDEN, STEP, L2, SEED = 12, 2, 1e-4, 0
REST = ("bass", "guitar", "piano", "other")


def _magnitude(audio: np.ndarray, n_fft: int) -> np.ndarray:
    """The channels' mean power's root, as the engine's masks see it, (bins, frames)."""
    spec = dsp._stft(np.ascontiguousarray(audio, dtype=np.float32), n_fft, n_fft // 4, 1)
    return np.sqrt(np.mean(np.square(np.abs(spec)), axis=0))


def song_data(engine: dsp.DspEngine, song: Path) -> dict:
    """The features of one song's low band (every STEP-th frame), (features, bins, frames);
    the drums' true share of each bin's power and the bin's weight (see the module's
    docstring), (bins, frames) each."""
    seen: list[tuple] = []
    real = dsp._low_drum_features

    def spy(acc, freqs, frame_s, *rest):
        feats = real(acc, freqs, frame_s, *rest)
        seen.append((feats[:, :, ::STEP], acc[: feats.shape[1], ::STEP], frame_s))
        return feats

    def read(stem: str) -> np.ndarray:
        return sf.read(song / f"{stem}.wav", dtype="float32", always_2d=True)[0]

    mix, rate = decode(song / "mixture.wav")
    stems = {s: read(s) for s in ("drums", *REST)}
    with mock.patch.object(dsp, "_low_drum_features", spy):
        engine.separate(mix, rate, "pro")
    if len(seen) != 1:
        raise SystemExit(f"{song}: one chunk a song, please (songs under 30 s)")
    feats, acc, frame_s = seen[0]
    n_fft = 4 * int(round(frame_s * rate))
    low = feats.shape[1]

    kit = np.square(_magnitude(stems["drums"], n_fft)[:low, ::STEP])
    others = functools.reduce(np.add, (stems[s] for s in REST))
    rest = np.square(_magnitude(others, n_fft)[:low, ::STEP])
    if kit.shape != acc.shape:
        raise SystemExit(f"{song}: the stems' frames do not match the mixture's")
    energy = {s: float(np.sum(np.square(x))) + 1e-9 for s, x in stems.items()}
    apart = sum(energy[s] for s in REST[1:])  # guitar, piano and other's
    comb = np.clip(feats[14], 0.0, 1.0)  # the bass comb's share (see _low_drum_features)
    weight = np.square(acc) * (1 / energy["drums"] + comb / energy["bass"] + (1 - comb) / apart)
    return {
        "feats": feats,
        "truth": kit / (kit + rest + 1e-12),
        "weight": weight / weight.mean(),
    }


def _join(songs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Songs' bins and frames in a row: (features with a ones row, truth, weight)."""
    feats = np.concatenate([s["feats"].reshape(len(s["feats"]), -1) for s in songs], axis=1)
    ones = np.ones((1, feats.shape[1]), dtype=np.float32)
    return (
        np.concatenate([feats, ones]),
        np.concatenate([s["truth"].ravel() for s in songs]).astype(np.float32),
        np.concatenate([s["weight"].ravel() for s in songs]).astype(np.float32),
    )


def _unpack(theta: np.ndarray, features: int) -> tuple[np.ndarray, np.ndarray]:
    """(hidden (HIDDEN, features + 1), out (HIDDEN + 1)): biases last, as the engine's."""
    cut = HIDDEN * (features + 1)
    return theta[:cut].reshape(HIDDEN, features + 1), theta[cut:]


def predict(hidden: np.ndarray, out: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """The share the engine gives (see dsp._low_drum_share), for features with a ones row."""
    return 1.0 / (1.0 + np.exp(-(out[:-1] @ np.tanh(hidden @ feats) + out[-1])))


def _squared(miss: np.ndarray, weight: np.ndarray) -> float:
    """The weighted mean squared error of a share, from its `miss` (share less truth)."""
    return float(np.sum(weight * miss * miss)) / len(miss)


def loss(theta: np.ndarray, feats: np.ndarray, truth: np.ndarray, weight: np.ndarray, l2: float):
    """The weighted mean squared error of the share (plus l2 on all but the biases) and its
    gradient."""
    hidden, out = _unpack(theta, len(feats) - 1)
    act = np.tanh(hidden @ feats)
    share = 1.0 / (1.0 + np.exp(-(out[:-1] @ act + out[-1])))
    miss = share - truth
    value = _squared(miss, weight)
    value += l2 * float(np.sum(hidden[:, :-1] ** 2) + np.sum(out[:-1] ** 2))
    dz = weight * 2 * miss * share * (1 - share) / len(truth)
    g_out = np.append(act @ dz + 2 * l2 * out[:-1], dz.sum())
    g_hidden = (np.outer(out[:-1], dz) * (1 - act * act)) @ feats.T
    g_hidden[:, :-1] += 2 * l2 * hidden[:, :-1]
    return value, np.concatenate([g_hidden.ravel(), g_out])


def fit(feats: np.ndarray, truth: np.ndarray, weight: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    size = HIDDEN * len(feats)
    start = np.concatenate([rng.normal(0.0, 0.3, size), rng.normal(0.0, 0.3, HIDDEN), [0.0]])
    found = scipy.optimize.minimize(
        loss, start, args=(feats, truth, weight, L2), jac=True, method="L-BFGS-B",
        options={"maxiter": 400},
    )  # fmt: skip
    return found.x


def error(hidden: np.ndarray, out: np.ndarray, data: tuple) -> float:
    feats, truth, weight = data
    return _squared(predict(hidden, out, feats) - truth, weight)


def hand_set(data: tuple) -> float:
    """The hand-set split's error: its share is the features' first (see _low_drum_features)."""
    feats, truth, weight = data
    return _squared(feats[0] - truth, weight)


def constants(hidden: np.ndarray, out: np.ndarray) -> str:
    """The weights as dsp.py holds them, rows split to fit the line."""

    def row(values: np.ndarray, indent: str) -> str:
        cut = (len(values) + 1) // 2
        halves = (values[:cut], values[cut:])
        return "\n".join(indent + ", ".join(f"{v:.3f}" for v in h) + "," for h in halves)

    rows = "".join(f"    (\n{row(r, ' ' * 8)}\n    ),\n" for r in hidden)
    return f"DRUM_HIDDEN = (\n{rows})\nDRUM_OUT = (\n{row(out, ' ' * 4)}\n)"


def main(argv: list[str] | None = None) -> None:
    args = devset.fit_parser(__doc__).parse_args(argv)
    engine = dsp.DspEngine(workers=1)
    data = {
        part: [song_data(engine, song) for song in paths]
        for part, paths in devset.fit_songs(args).items()
    }
    train = _join([s for p in args.parts for s in data[p]])
    hidden, out = _unpack(fit(*train), len(train[0]) - 1)
    now = (np.asarray(dsp.DRUM_HIDDEN), np.asarray(dsp.DRUM_OUT))
    for part, songs in data.items():
        joined = _join(songs)
        print(
            f"{part:8s} share's error: fitted {error(hidden, out, joined):.4f}, "
            f"the engine's {error(*now, joined):.4f}, hand-set {hand_set(joined):.4f}"
        )
    print(constants(hidden, out))


if __name__ == "__main__":
    main()
