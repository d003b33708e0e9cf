"""System checks: a configured demucs engine must have its package and checkpoints in place.
A tier on auto never errs: it runs on dsp, and `manage.py check` and /readyz say why."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core import checks

from .separation import TIERS


def demucs_tiers() -> list[str]:
    """The tiers that settings send to the demucs engine by name (not by auto)."""
    by_tier = settings.BTRO_ENGINE_BY_TIER
    return [tier for tier in TIERS if by_tier.get(tier, settings.BTRO_ENGINE) == "demucs"]


@checks.register("models")  # the tag /readyz and `manage.py readyz` run
def check_demucs_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    tiers = demucs_tiers()
    if not tiers:
        return []
    # find_spec, not import: every manage.py command runs the checks, and torch loads slowly.
    absent = [name for name in ("torch", "demucs") if importlib.util.find_spec(name) is None]
    if absent:
        return [
            checks.Error(
                f"BTRO_ENGINE uses demucs but {' and '.join(absent)} is not installed.",
                hint="pip install -r requirements-neural.txt (or set BTRO_ENGINE=auto).",
                id="btro.E001",
            )
        ]
    from .separation.demucs_engine import missing_models

    return [
        checks.Error(
            message,
            hint="python manage.py fetch_models downloads the official checkpoints.",
            id="btro.E002",
        )
        for message in missing_models(
            settings.BTRO_MODEL_DIR, settings.BTRO_DEMUCS.get("models"), tiers
        )
    ]
