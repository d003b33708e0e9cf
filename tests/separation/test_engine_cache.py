"""Engines are built once per process and kept: their models load once, whoever asks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import jobs.separation
from jobs.separation import cached_engine
from jobs.separation.runner import Task, run_task
from tests.fake_engines import CountingEngine

FAKE = "tests.fake_engines:CountingEngine"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.separation, "_engines", {})
    monkeypatch.setattr(CountingEngine, "built", 0)


def test_the_same_name_and_options_give_the_same_engine() -> None:
    first = cached_engine(FAKE, {"seconds": 0.0})

    assert cached_engine(FAKE, {"seconds": 0.0}) is first
    assert CountingEngine.built == 1


def test_other_options_give_another_engine() -> None:
    first = cached_engine(FAKE, {"seconds": 0.0})

    assert cached_engine(FAKE, {"seconds": 1.0}) is not first
    assert cached_engine(FAKE) is not first
    assert CountingEngine.built == 3


def test_the_runner_builds_its_engine_once_across_tasks(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    sf.write(song, np.full((800, 2), 0.1, dtype=np.float32), 8000)

    for out in ("a", "b"):
        (tmp_path / out).mkdir()
        task = Task(input_path=str(song), tier="pro", engine=FAKE, out_dir=str(tmp_path / out))
        assert run_task(task, lambda percent: None) is not None

    assert CountingEngine.built == 1
