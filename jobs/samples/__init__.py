"""The fixed, playable stems that test-mode jobs return."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import soundfile as sf

from jobs.separation import TIER_STEMS

SAMPLE_DIR = Path(__file__).resolve().parent


def sample_path(stem: str) -> Path:
    return SAMPLE_DIR / f"{stem}.wav"


@cache
def test_result(tier: str) -> dict:
    """The result every test job of this tier returns; URLs are added per job when shown."""
    stems = {}
    sample_rate = 0
    for stem in TIER_STEMS[tier]:
        info = sf.info(sample_path(stem))
        sample_rate = info.samplerate
        stems[stem] = {
            "bytes": sample_path(stem).stat().st_size,
            "duration": round(info.frames / info.samplerate, 3),
        }
    return {"engine": "test", "format": "wav", "sample_rate": sample_rate, "stems": stems}
