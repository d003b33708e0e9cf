"""Where one stem's low band goes when the dsp engine separates that stem alone.

    python -m bench.solo [--devset heldout] [--stem drums] [--below 200] [--tracks 24]

Not a test. Each song's stem (drums by default) is separated at pro on its own, and the
energy below `--below` Hz of each output stem is reported as a share of their sum: a solo
kit whose low band goes to bass or other is a kit the engine takes for an instrument, in
any mix. Per song, with the song's programs (the drum kit's GM number among them), then
the mean. Songs are bench/devset.py's, cached under var/bench/devset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import devset  # noqa: E402
from jobs.separation import dsp  # noqa: E402


def low_shares(stems: dict[str, np.ndarray], rate: int, below: float) -> dict[str, float]:
    """Each stem's energy below `below` Hz (channels summed), as a share of all of theirs."""
    energy = {}
    for name, x in stems.items():
        spectrum = np.fft.rfft(x.astype(np.float64), axis=0)
        low = np.fft.rfftfreq(len(x), 1.0 / rate) < below
        energy[name] = float(np.sum(np.abs(spectrum[low]) ** 2))
    total = sum(energy.values()) or 1.0
    return {name: e / total for name, e in energy.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", choices=tuple(devset.FAMILIES), default="heldout")
    ap.add_argument("--stem", choices=devset.STEMS, default="drums")
    ap.add_argument("--below", type=float, default=200.0, help="Hz")
    ap.add_argument("--tracks", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--work", default=str(ROOT / "var" / "bench"))
    args = ap.parse_args(argv)
    songs = devset.songs(Path(args.work) / "devset", args.devset, args.tracks, args.seconds)
    engine = dsp.DspEngine(workers=1)
    rows = []
    for song in songs:
        solo, rate = sf.read(song / f"{args.stem}.wav", dtype="float32", always_2d=True)
        shares = low_shares(engine.separate(solo, rate, "pro"), rate, args.below)
        rows.append(shares)
        meta = (song / "meta.txt").read_text().strip()
        print(
            f"  {song.name} " + " ".join(f"{k} {v:4.0%}" for k, v in shares.items()) + f"  {meta}"
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(
        f"\n{args.stem} alone, below {args.below:g} Hz, {len(rows)} songs of {args.seconds:g} s"
        f" (bench/devset.py {args.devset}): " + ", ".join(f"{k} {v:.0%}" for k, v in mean.items())
    )


if __name__ == "__main__":
    main()
