"""Randomly initialised Demucs models written in Demucs's own repo layout, for tests and benches.

Files carry the official names: the bag yamls shipped with demucs (`demucs/remote/*.yaml`)
and `<official signature>-<sha256 prefix of our file>.th` packages, so the engine's real
loading path (`demucs.pretrained.get_model(name, repo=folder)`) runs unchanged on them.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

SOURCES_4 = ["drums", "bass", "other", "vocals"]
SOURCES_6 = [*SOURCES_4, "guitar", "piano"]
# Official bag name → its models' signatures and sources (demucs/remote/files.txt, *.yaml).
OFFICIAL: dict[str, tuple[list[str], list[str]]] = {
    "htdemucs": (["955717e8"], SOURCES_4),
    "htdemucs_6s": (["5c90dfd2"], SOURCES_6),
    "htdemucs_ft": (["f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d"], SOURCES_4),
}
# Small enough that a few seconds of audio separate in well under a second on a CPU.
TINY = {
    "channels": 8,
    "depth": 3,
    "nfft": 256,
    "t_layers": 1,
    "t_heads": 2,
    "dconv_comp": 2,
    "segment": Fraction(2),
}
# The published htdemucs architecture (80.2 MiB in half precision): real timing, random weights.
FULL = {
    "dconv_mode": 3,
    "depth": 4,
    "t_layers": 5,
    "bottom_channels": 512,
    "segment": Fraction(39, 5),
}


def write_model(model_dir: Path, signature: str, sources: list[str], arch: dict) -> Path:
    """Save a random HTDemucs as demucs's package format, named `<signature>-<sha256[:8]>.th`."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    model = HTDemucs(sources=list(sources), **arch)
    args, kwargs = model._init_args_kwargs
    # demucs.states.serialize_model's format, minus training_args (which needs omegaconf).
    package = {
        "klass": HTDemucs,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=True),
    }
    save_with_checksum(package, model_dir / f"{signature}.th")
    return next(model_dir.glob(f"{signature}-*.th"))


def write_model_dir(
    model_dir: Path,
    names: tuple[str, ...] = ("htdemucs", "htdemucs_6s", "htdemucs_ft"),
    full_size: bool = False,
    seed: int = 0,
) -> Path:
    """Fill `model_dir` with random models for the official bag `names` and their yamls."""
    import torch
    from demucs.pretrained import REMOTE_ROOT

    torch.manual_seed(seed)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        signatures, sources = OFFICIAL[name]
        for signature in signatures:
            write_model(model_dir, signature, sources, FULL if full_size else TINY)
        shutil.copyfile(REMOTE_ROOT / f"{name}.yaml", model_dir / f"{name}.yaml")
    return model_dir
