"""Every engine checks its input the same way, before any work: tier, shape, sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.separation import AudioError, Engine, SeparationError, checked_input, get_engine


@pytest.fixture(params=["dsp", pytest.param("demucs", marks=pytest.mark.neural)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "demucs":
        pytest.importorskip("torch")
        pytest.importorskip("demucs")
        return get_engine("demucs", model_dir=tmp_path, device="cpu")  # no models: never reached
    return get_engine(request.param)


def test_an_unknown_tier_is_refused(engine: Engine) -> None:
    with pytest.raises(SeparationError, match="Unknown tier 'gold'"):
        engine.separate(np.zeros((100, 2), dtype=np.float32), 8000, "gold")


def test_audio_of_more_than_two_dimensions_is_refused(engine: Engine) -> None:
    with pytest.raises(SeparationError, match=r"shaped \(frames, channels\)"):
        engine.separate(np.zeros((100, 2, 2), dtype=np.float32), 8000, "pro")


@pytest.mark.parametrize("sample_rate", [0, -44100])
def test_a_sample_rate_below_one_is_refused(engine: Engine, sample_rate: int) -> None:
    with pytest.raises(SeparationError, match="sample rate"):
        engine.separate(np.zeros((100, 2), dtype=np.float32), sample_rate, "pro")


@pytest.mark.parametrize("shape", [(0, 2), (100, 0), (0,)])
def test_audio_without_frames_or_channels_is_refused_as_empty(
    engine: Engine, shape: tuple[int, ...]
) -> None:
    with pytest.raises(AudioError, match="empty"):
        engine.separate(np.zeros(shape, dtype=np.float32), 8000, "pro")


def test_one_dimensional_audio_becomes_one_channel_and_says_so() -> None:
    mix, flat = checked_input(np.arange(5, dtype=np.int16), 8000, "basic")

    assert flat and mix.shape == (5, 1) and mix.dtype == np.float32


def test_a_disk_backed_input_is_not_copied(tmp_path: Path) -> None:
    audio = np.memmap(tmp_path / "a.raw", dtype=np.float32, mode="w+", shape=(1000, 2))

    mix, flat = checked_input(audio, 8000, "pro")

    assert not flat and np.shares_memory(mix, audio)
