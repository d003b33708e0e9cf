"""Which engine runs a tier, and its options, from settings: Django meets jobs.separation here."""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from typing import NamedTuple

from django.conf import settings

from .separation import TIERS
from .separation.demucs_engine import missing_models, tier_models

logger = logging.getLogger(__name__)

AUTO = "auto"
# How long a process trusts its answer to "are the checkpoints there?" (see engine_choice).
CHOICE_SECONDS = 30.0


class EngineChoice(NamedTuple):
    engine: str
    reason: str  # for operators: short, and no path (GET /readyz shows it to anyone)


def _setting(tier: str) -> tuple[str, str]:
    """The engine settings give `tier`, and which setting says so."""
    if tier in settings.BTRO_ENGINE_BY_TIER:
        return settings.BTRO_ENGINE_BY_TIER[tier], "BTRO_ENGINE_BY_TIER"
    return settings.BTRO_ENGINE, "BTRO_ENGINE"


def _resolve(tier: str) -> EngineChoice:
    name, source = _setting(tier)
    if name != AUTO:
        return EngineChoice(name, f"{source}={name}")
    # find_spec, not import: torch takes seconds to load, and this runs in web processes.
    absent = [
        label
        for module, label in (("torch", "PyTorch"), ("demucs", "demucs"))
        if importlib.util.find_spec(module) is None
    ]
    if absent:
        return EngineChoice("dsp", f"auto: {' and '.join(absent)} not installed")
    models = settings.BTRO_DEMUCS.get("models")
    model = tier_models(models).get(tier)
    try:
        missing = model is None or missing_models(settings.BTRO_MODEL_DIR, models, [tier])
    except Exception:  # a torn bag .yaml: this runs as jobs are created, which must go on
        logger.warning("auto engine: cannot read the %s bag", model, exc_info=True)
        return EngineChoice("dsp", f"auto: the {model} bag in BTRO_MODEL_DIR is unreadable")
    if missing:
        return EngineChoice("dsp", f"auto: no {model} checkpoints in BTRO_MODEL_DIR")
    return EngineChoice("demucs", f"auto: {model} checkpoints in BTRO_MODEL_DIR")


def _model_dir_stamp() -> int | None:
    try:
        return os.stat(settings.BTRO_MODEL_DIR).st_mtime_ns
    except OSError:
        return None


# (the settings and model folder it was decided for, until when it holds, the choices)
_kept: tuple[tuple[object, ...], float, dict[str, EngineChoice]] | None = None


def engine_choices() -> dict[str, EngineChoice]:
    """Each tier's engine and why, as engine_choice decides it."""
    global _kept
    key = (
        settings.BTRO_ENGINE,
        repr(sorted(settings.BTRO_ENGINE_BY_TIER.items())),
        settings.BTRO_MODEL_DIR,
        repr(sorted((settings.BTRO_DEMUCS.get("models") or {}).items())),
        _model_dir_stamp(),  # adding or removing a checkpoint file changes its folder's mtime
    )
    now = time.monotonic()
    kept = _kept  # one read: another thread may replace it meanwhile, never half of it
    if kept is not None and kept[0] == key and now < kept[1]:
        return kept[2]
    choices = {tier: _resolve(tier) for tier in TIERS}
    _kept = (key, now + CHOICE_SECONDS, choices)
    return choices


def engine_choices_forget() -> None:
    """Decide again at the next call (tests; a shell after fetch_models wrote into a folder)."""
    global _kept
    _kept = None


def engine_choice(tier: str) -> EngineChoice:
    """The engine that runs `tier`'s jobs, and why. With BTRO_ENGINE (or the tier's entry in
    BTRO_ENGINE_BY_TIER) `auto`: demucs when PyTorch and demucs are installed and the tier's
    checkpoints are in BTRO_MODEL_DIR, else dsp. The answer is kept for CHOICE_SECONDS, or until
    the model folder changes, so calling it on every request costs a stat.

    Both ends of a job ask it: the web process picks the job's queue (queue_for), the worker
    the engine that runs it (engine_name_for). Checkpoints that appear or vanish in between
    only mean that the worker's answer wins: the result names the engine that made it."""
    choices = engine_choices()
    return choices[tier] if tier in choices else _resolve(tier)


def engine_name_for(tier: str) -> str:
    return engine_choice(tier).engine


# A queue per engine, so that GPU machines take only neural work (`rundramatiq --queues
# separate.demucs`) and CPU machines the rest; any engine other than demucs runs on dsp's.
SEPARATION_QUEUES = ("separate.dsp", "separate.demucs")


def queue_for(tier: str) -> str:
    """The queue of a tier's jobs."""
    return "separate.demucs" if engine_name_for(tier) == "demucs" else "separate.dsp"


# The separation process's memory budget by engine, when BTRO_SEPARATION_MEMORY_MB is 0.
DEFAULT_MEMORY_MB = {"dsp": 3072, "demucs": 8192}


def engine_memory_mb(name: str) -> int:
    """The memory budget of a separation process running `name` (see README, Limits)."""
    return settings.BTRO_SEPARATION_MEMORY_MB or DEFAULT_MEMORY_MB.get(name, 8192)


def engine_options(name: str) -> dict[str, object]:
    if name == "demucs":
        return {"model_dir": settings.BTRO_MODEL_DIR, **settings.BTRO_DEMUCS}
    return {}
