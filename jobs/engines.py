"""Which engine runs a tier, and its options, from settings: Django meets jobs.separation here."""

from __future__ import annotations

from django.conf import settings


def engine_name_for(tier: str) -> str:
    return settings.BTRO_ENGINE_BY_TIER.get(tier, settings.BTRO_ENGINE)


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
