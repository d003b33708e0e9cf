"""Benchmark the separation engines: SDR per stem on devset songs, speed, peak memory.

Not a test. Songs are cached under var/bench/: by default the held-out part of
bench/devset.py (programs, kits and patterns the dsp engine was not tuned on); --devset
tune, tune2, tune3 and tune4 its tuning parts, --devset shared ../shared/eval/make_devset.py's
songs (--seed).
SDR is the mean over songs ± its standard deviation; "dsp-textbook" is the per-song
difference, mean ± sd [worst song].

    python -m bench.engines --tracks 8 --seconds 20 --engines dsp --long-minutes 10
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import devset as broad  # noqa: E402
from jobs.separation import TIER_STEMS, get_engine  # noqa: E402
from jobs.separation.audio import decode, encode  # noqa: E402

REFS = ("vocals", "drums", "bass", "guitar", "piano", "other")


def shared_dir() -> Path:
    """shared/ sits inside the checkout here and beside it in CI."""
    for candidate in (ROOT / "shared", ROOT.parent / "shared"):
        if (candidate / "eval" / "make_devset.py").exists():
            return candidate
    raise SystemExit("Cannot find shared/eval/make_devset.py next to the repository.")


def load_score():
    spec = importlib.util.spec_from_file_location("score", shared_dir() / "eval" / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def devset(work: Path, tracks: int, seconds: float, seed: int) -> list[Path]:
    folder = work / f"devset_s{seed}_t{tracks}_{seconds:g}"
    songs = [folder / f"song{i:02d}" for i in range(tracks)]
    if not all((s / "mixture.wav").exists() for s in songs):
        print(f"rendering {tracks} songs of {seconds:g} s (seed {seed}) into {folder}", flush=True)
        script = shared_dir() / "eval" / "make_devset.py"
        cmd = [sys.executable, str(script), str(folder), "--tracks", str(tracks)]
        cmd += ["--seconds", str(seconds), "--seed", str(seed)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return songs


def reference(song: Path, stem: str, tier: str) -> np.ndarray:
    def read(name: str) -> np.ndarray:
        return sf.read(song / f"{name}.wav", always_2d=True, dtype="float32")[0]

    if stem == "instrumental":
        return functools.reduce(np.add, (read(s) for s in REFS if s != "vocals"))
    if stem == "other" and tier in ("pro", "basic"):
        # Four-stem "other" is everything but vocals, drums and bass (MUSDB convention).
        return read("guitar") + read("piano") + read("other")
    return read(stem)


def sdr_table(
    score, songs: list[Path], tier: str, estimates: list[dict]
) -> dict[str, dict[str, float]]:
    """{stem: {song: SDR}}, songs whose reference stem is silent left out."""
    table: dict[str, dict[str, float]] = {}
    for song, est in zip(songs, estimates, strict=True):
        for stem, x in est.items():
            ref = reference(song, stem, tier)
            if np.sqrt(np.mean(ref**2)) < 1e-4:
                continue
            table.setdefault(stem, {})[song.name] = float(score.sdr(ref, x))
    return table


def _spread(values: list[float], worst: bool = False) -> str:
    text = f"{np.mean(values):6.2f} ±{np.std(values):4.2f}"
    return text + (f" [{min(values):+.1f}]" if worst else "")


def quality(args, songs: list[Path], engines: list[str], tiers: list[str]) -> None:
    score = load_score()
    mixes = [decode(s / "mixture.wav") for s in songs]
    for tier in tiers:
        stems = TIER_STEMS[tier]
        cols: dict[str, dict[str, dict[str, float]]] = {}
        for name in engines:
            engine = get_engine(name, **_options(name))
            est = []
            for song, (x, sr) in zip(songs, mixes, strict=True):
                out = engine.separate(x, sr, tier)
                est.append(out)
                if args.write:
                    folder = (
                        Path(args.work) / "estimates" / name / tier / song.parent.name / song.name
                    )
                    folder.mkdir(parents=True, exist_ok=True)
                    for stem, y in out.items():
                        encode(y, sr, folder / f"{stem}.wav", "wav")
            cols[name] = sdr_table(score, songs, tier, est)
        cols["textbook"] = textbook_table(Path(args.work), score, songs, tier, mixes)
        cols["mixture"] = sdr_table(score, songs, tier, [{s: x for s in stems} for x, _ in mixes])
        names = list(cols)
        print(f"\n[{tier}] SDR dB over {len(songs)} songs of {args.seconds:g} s ({args.label})")
        header = f"{'stem':13s}" + "".join(f"{n:>16s}" for n in names)
        print(header + "".join(f"{n + '-textbook':>24s}" for n in engines))
        for stem in stems:
            row = "".join(
                f"{_spread(list(cols[n][stem].values())):>16s}"
                if cols[n].get(stem)
                else f"{'-':>16s}"
                for n in names
            )
            for n in engines:
                mine, theirs = cols[n].get(stem, {}), cols["textbook"].get(stem, {})
                diff = [mine[k] - theirs[k] for k in mine if k in theirs]
                row += f"{_spread(diff, worst=True):>24s}" if diff else f"{'-':>24s}"
            print(f"{stem:13s}{row}")
        if args.per_song:
            for n in engines:
                print(f"{n}-textbook per song:")
                for song in songs:
                    gaps = {
                        stem: cols[n][stem][song.name] - cols["textbook"][stem][song.name]
                        for stem in stems
                        if song.name in cols[n].get(stem, {})
                        and song.name in cols["textbook"].get(stem, {})
                    }
                    print(f"  {song.name} " + " ".join(f"{k} {v:+.2f}" for k, v in gaps.items()))
        sys.stdout.flush()


def textbook_table(
    work: Path, score, songs: list[Path], tier: str, mixes: list
) -> dict[str, dict[str, float]]:
    """The textbook's SDRs, cached in work/textbook_sdr.json by song file and tier: the
    recipe is fixed, and it takes longer than the dsp engine on the same songs."""
    cache_path = work / "textbook_sdr.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def key(song: Path) -> str:
        mix = song / "mixture.wav"
        return f"{mix.resolve()}:{mix.stat().st_mtime_ns}:{tier}"

    missing = [i for i, song in enumerate(songs) if key(song) not in cache]
    if missing:
        from bench import textbook

        stems = TIER_STEMS[tier]
        est = []
        for i in missing:
            out = textbook.separate(*mixes[i])
            est.append({s: out[s] for s in stems if s in out})
        fresh = sdr_table(score, [songs[i] for i in missing], tier, est)
        for i in missing:
            name = songs[i].name
            cache[key(songs[i])] = {s: v[name] for s, v in fresh.items() if name in v}
        cache_path.write_text(json.dumps(cache, indent=1))
    table: dict[str, dict[str, float]] = {}
    for song in songs:
        for stem, value in cache[key(song)].items():
            table.setdefault(stem, {})[song.name] = value
    return table


def long_track(work: Path, songs: list[Path], minutes: float) -> Path:
    path = work / f"long_{minutes:g}min_{songs[0].parent.name}.wav"
    if not path.exists():
        parts = [sf.read(s / "mixture.wav", dtype="float32", always_2d=True)[0] for s in songs]
        sr = sf.info(str(songs[0] / "mixture.wav")).samplerate
        loop = np.concatenate(parts)
        total = int(minutes * 60 * sr)
        with sf.SoundFile(str(path), "w", sr, loop.shape[1], subtype="FLOAT") as out:
            for start in range(0, total, len(loop)):
                out.write(loop[: total - start])
    return path


def child(path: str, engine_name: str, tier: str) -> None:
    """Run in a fresh process what a job runs (runner.run_task): decode, separate, write
    each stem as WAV; report times and RSS. Engine time runs from the runner's progress 2
    (decoded, separation starts) to 92 (the engine's 100)."""
    from jobs.separation.runner import Task, run_task

    marks: dict[str, float] = {}

    def progress(percent: float) -> None:
        if percent >= 2 and "start" not in marks:
            marks["start"] = time.perf_counter()
        if percent >= 92 and "end" not in marks:
            marks["end"] = time.perf_counter()

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        task = Task(path, tier, engine_name, out, engine_options=_options(engine_name))
        outcome = run_task(task, progress)
        assert outcome is not None
        seconds = next(iter(outcome.stems.values()))["duration"]
    t1 = time.perf_counter()
    # This address space's own peak (VmHWM): ru_maxrss survives exec, so after a quality
    # pass it reported the parent's RSS at the fork (950 MB against 440-550 for dsp pro).
    from bench.limits import peak_rss_mb

    rss_mb = peak_rss_mb(os.getpid())
    if math.isnan(rss_mb):  # no /proc (not Linux)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine_s = marks["end"] - marks["start"]
    print(json.dumps({"audio_s": seconds, "engine_s": engine_s, "io_s": t1 - t0 - engine_s,
                      "rss_mb": rss_mb}))  # fmt: skip


def run_child(path: Path, engine: str, tier: str) -> dict:
    cmd = [sys.executable, "-m", "bench.engines", "--child", str(path), engine, tier]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def speed(args, songs: list[Path], engines: list[str], tiers: list[str]) -> None:
    path = long_track(Path(args.work), songs, args.speed_minutes)
    print(
        f"\nspeed on a {args.speed_minutes:g}-minute stereo track, seconds of audio per second, "
        f"median [min–max] of {args.repeats} runs (load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'engine':8s}{'tier':15s}{'whole process':>22s}{'engine only':>22s}{'peak RSS MB':>13s}"
    )
    for name in engines:
        for tier in tiers:
            runs = [run_child(path, name, tier) for _ in range(args.repeats)]
            whole = [r["audio_s"] / r["wall_s"] for r in runs]
            engine = [r["audio_s"] / r["engine_s"] for r in runs]
            print(
                f"{name:8s}{tier:15s}{_range(whole):>22s}{_range(engine):>22s}"
                f"{max(r['rss_mb'] for r in runs):13.0f}",
                flush=True,
            )


def _range(values: list[float]) -> str:
    return f"{np.median(values):.1f}x [{min(values):.1f}–{max(values):.1f}]"


def memory(args, songs: list[Path], engines: list[str]) -> None:
    for minutes in args.long_minutes:
        path = long_track(Path(args.work), songs, minutes)
        for name in engines:
            for tier in args.memory_tiers.split(","):
                r = run_child(path, name, tier)
                print(
                    f"\npeak memory, {minutes:g}-minute stereo 44.1 kHz track, {name} {tier}: "
                    f"{r['rss_mb']:.0f} MB RSS (whole process: decode, separate, encode); "
                    f"{r['audio_s'] / r['wall_s']:.1f}x real time",
                    flush=True,
                )


def _options(name: str) -> dict:
    if name == "demucs" and os.environ.get("BTRO_MODEL_DIR"):
        return {"model_dir": os.environ["BTRO_MODEL_DIR"]}
    return {}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(*argv[1:4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", choices=(*broad.FAMILIES, "shared"), default="heldout")
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--start", type=int, default=0, help="quality: leave out the first songs")
    ap.add_argument("--per-song", action="store_true", help="engine-textbook for each song")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1, help="--devset shared: tuned on seed 0")
    ap.add_argument("--repeats", type=int, default=3, help="speed runs per engine and tier")
    ap.add_argument("--engines", default="dsp")
    ap.add_argument("--tiers", default=",".join(TIER_STEMS))
    ap.add_argument("--speed-minutes", type=float, default=2.0)
    ap.add_argument("--long-minutes", type=float, nargs="*", default=[10.0])
    ap.add_argument("--memory-tiers", default="pro")
    ap.add_argument("--skip", default="", help="comma list of quality,speed,memory")
    ap.add_argument("--write", action="store_true", help="write estimates under --work")
    ap.add_argument("--work", default=str(ROOT / "var" / "bench"))
    args = ap.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    tiers = args.tiers.split(",")
    skip = set(args.skip.split(","))
    if args.devset == "shared":
        songs = devset(Path(args.work), args.tracks, args.seconds, args.seed)
        args.label = f"shared devset, seed {args.seed}"
    else:
        songs = broad.songs(Path(args.work) / "devset", args.devset, args.tracks, args.seconds)
        args.label = f"bench/devset.py {args.devset} part"
    if "quality" not in skip:
        quality(args, songs[args.start :], engines, tiers)
    if "speed" not in skip:
        speed(args, songs, engines, tiers)
    if "memory" not in skip:
        memory(args, songs, engines)


if __name__ == "__main__":
    main()
