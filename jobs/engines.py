"""Which engine runs a tier, and its options, from settings: Django meets jobs.separation here."""

from __future__ import annotations

from django.conf import settings


def engine_name_for(tier: str) -> str:
    return settings.BTRO_ENGINE_BY_TIER.get(tier, settings.BTRO_ENGINE)


def engine_options(name: str) -> dict[str, object]:
    if name == "demucs":
        return {"model_dir": settings.BTRO_MODEL_DIR, **settings.BTRO_DEMUCS}
    return {}
