"""Separation engines: audio in, stems out. This package imports numpy, never Django.

Audio arrays are float32, shaped (frames, channels), as soundfile reads them.
An engine is any object with

    separate(audio, sample_rate, tier, progress=None) -> {stem: array}

whose stems keep the input's sample rate, length and channel count, and whose
progress callback, when given, is called with a number from 0 to 100.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

TIER_STEMS: dict[str, tuple[str, ...]] = {
    "basic": ("vocals", "instrumental"),
    "pro": ("vocals", "drums", "bass", "other"),
    "studio": ("vocals", "drums", "bass", "guitar", "piano", "other"),
    "vocal_remover": ("instrumental", "vocals"),
}
TIERS: tuple[str, ...] = tuple(TIER_STEMS)

Progress = Callable[[float], None]
# An engine whose `takes_outputs` is true also accepts separate(..., outputs=make), and fills
# make(stem, (frames, channels)), a zeroed float32 array, for each stem it returns: the
# runner hands it arrays that are the WAV files themselves (see audio.wav_array).
Outputs = Callable[[str, tuple[int, int]], np.ndarray]


class SeparationError(Exception):
    """An engine could not separate this input; the message is shown to the user."""


class AudioError(SeparationError):
    """The input is not decodable audio (not audio, empty, truncated, unsupported)."""


class EngineUnavailable(SeparationError):
    """The engine cannot run here: a missing package, model folder or checkpoint."""


class Engine(Protocol):
    name: str

    def separate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        tier: str,
        progress: Progress | None = None,
    ) -> dict[str, np.ndarray]: ...


def checked_input(audio: Any, sample_rate: int, tier: str) -> tuple[np.ndarray, bool]:
    """`audio` as float32 (frames, channels), and whether it came one-dimensional.

    The checks every engine makes before any work: a known tier, a (frames, channels) or
    (frames,) shape with at least one of each, a positive sample rate.
    """
    if tier not in TIER_STEMS:
        raise SeparationError(f"Unknown tier {tier!r}; choose one of {', '.join(TIER_STEMS)}.")
    mix = np.asanyarray(audio, dtype=np.float32)  # keeps a disk-backed input's map
    flat = mix.ndim == 1
    if flat:
        mix = mix[:, None]
    if mix.ndim != 2 or sample_rate <= 0:
        raise SeparationError("Audio must be shaped (frames, channels) with a sample rate.")
    if mix.shape[0] == 0 or mix.shape[1] == 0:
        raise AudioError("The audio is empty.")
    return mix, flat


def get_engine(name: str, **options: Any) -> Engine:
    """Return the engine called `name`, built with engine-specific `options`.

    `name` is "dsp", "demucs", or "package.module:Class" for an engine of your own.
    """
    if ":" in name:
        import importlib

        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)(**options)
        except (ImportError, AttributeError) as err:
            raise EngineUnavailable(f"Cannot load engine {name!r}: {err}") from None
    if name == "dsp":
        from .dsp import DspEngine

        return DspEngine(**options)
    if name == "demucs":
        from .demucs_engine import DemucsEngine

        return DemucsEngine(**options)
    raise EngineUnavailable(
        f"Unknown engine {name!r}; choose 'dsp', 'demucs' or 'package.module:Class'."
    )


_engines: dict[tuple[str, str], Engine] = {}
_engines_lock = threading.Lock()


def cached_engine(name: str, options: Mapping[str, Any] | None = None) -> Engine:
    """`get_engine(name, **options)`, built once per process: an engine's models load once."""
    options = dict(options or {})
    key = (name, repr(sorted(options.items())))
    with _engines_lock:
        if key not in _engines:
            _engines[key] = get_engine(name, **options)
        return _engines[key]
