"""Builds separation engines from settings: the one place Django meets jobs.separation."""

from __future__ import annotations

from django.conf import settings

from .separation import Engine, get_engine

_cache: dict[str, Engine] = {}


def engine_name_for(tier: str) -> str:
    return settings.BTRO_ENGINE_BY_TIER.get(tier, settings.BTRO_ENGINE)


def engine_options(name: str) -> dict[str, object]:
    if name == "demucs":
        return {"model_dir": settings.BTRO_MODEL_DIR, **settings.BTRO_DEMUCS}
    return {}


def build_engine(tier: str, name: str | None = None) -> Engine:
    """The engine for `tier` (or the one named), cached per process: models load once."""
    name = name or engine_name_for(tier)
    if name not in _cache:
        _cache[name] = get_engine(name, **engine_options(name))
    return _cache[name]
