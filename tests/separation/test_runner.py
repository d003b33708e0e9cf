"""The separation child process: answers go to the task that asked, whatever happens."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jobs.separation import AudioError
from jobs.separation.runner import (
    ChildCrashed,
    Decoded,
    OverBudget,
    SeparationProcess,
    Task,
    TimedOut,
)


@pytest.fixture
def child():
    process = SeparationProcess()
    yield process
    process.stop()


@pytest.fixture
def song(tmp_path) -> str:
    path = tmp_path / "song.wav"
    sf.write(path, np.zeros((8000, 2), dtype=np.float32) + 0.1, 8000)
    return str(path)


def task(song: str, out: Path, tier: str = "basic", engine: str = "SplitEngine", **options):
    out.mkdir(exist_ok=True)
    return Task(
        input_path=song,
        tier=tier,
        engine=f"tests.fake_engines:{engine}",
        out_dir=str(out),
        engine_options=options,
    )


def test_a_task_comes_back_with_its_stems(child, song, tmp_path):
    outcome = child.run(task(song, tmp_path / "a", "pro"), timeout=60)
    assert sorted(outcome.stems) == ["bass", "drums", "other", "vocals"]
    assert outcome.sample_rate == 8000 and outcome.engine == "fake"


def test_a_failing_progress_callback_stops_the_child_so_the_next_task_gets_its_own_answer(
    child, song, tmp_path
):
    def broken(progress):
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        child.run(task(song, tmp_path / "a", "basic", seconds=1.0), timeout=60, on_progress=broken)
    outcome = child.run(task(song, tmp_path / "b", "pro"), timeout=60)
    assert sorted(outcome.stems) == ["bass", "drums", "other", "vocals"]
    assert all(info["path"].startswith(str(tmp_path / "b")) for info in outcome.stems.values())


def test_a_refused_input_is_an_answer_and_keeps_the_child(child, song, tmp_path):
    child.run(task(song, tmp_path / "a"), timeout=60)
    pid = child._process.pid
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError):
        child.run(task(str(bad), tmp_path / "b"), timeout=60)
    assert child._process.pid == pid


def test_a_task_past_its_time_limit_is_killed_and_the_next_one_runs(child, song, tmp_path):
    with pytest.raises(TimedOut):
        child.run(task(song, tmp_path / "a", seconds=30.0), timeout=2)
    assert child.run(task(song, tmp_path / "b"), timeout=60).stems


def test_a_crash_in_the_child_is_reported_and_the_next_task_gets_a_new_child(child, song, tmp_path):
    with pytest.raises(ChildCrashed):
        child.run(task(song, tmp_path / "a", engine="SuicidalEngine"), timeout=60)
    assert child.run(task(song, tmp_path / "b"), timeout=60).stems


def test_the_child_reports_the_decoded_length_before_separating(child, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((3 * 8000, 2), dtype=np.float32) + 0.1, 8000)
    heard: list[Decoded] = []

    outcome = child.run(task(str(path), tmp_path / "a"), timeout=60, on_decoded=heard.append)

    assert [(d.frames, d.channels, d.sample_rate, d.seconds) for d in heard] == [
        (24000, 2, 8000, 3.0)
    ]
    assert outcome.stems


def test_a_refusal_of_the_decoded_length_stops_the_task_unseparated_and_keeps_the_child(
    child, song, tmp_path
):
    child.run(task(song, tmp_path / "a"), timeout=60)
    pid = child._process.pid

    class Unpaid(Exception):
        pass

    def refuse(decoded):
        raise Unpaid(decoded.seconds)

    slow = task(song, tmp_path / "b", seconds=30.0)  # would run past the time-out if started
    with pytest.raises(Unpaid):
        child.run(slow, timeout=10, on_decoded=refuse)
    assert not list((tmp_path / "b").iterdir())
    assert child._process.pid == pid
    assert child.run(task(song, tmp_path / "c"), timeout=60).stems


def test_a_task_over_its_memory_budget_fails_clearly_and_the_next_task_runs(child, song, tmp_path):
    greedy = replace(task(song, tmp_path / "a", engine="GreedyEngine"), memory_mb=1024)

    with pytest.raises(OverBudget, match="memory budget of 1024 MB"):
        child.run(greedy, timeout=60)
    assert child.run(task(song, tmp_path / "b"), timeout=60).stems


def test_the_child_refuses_audio_past_the_decoded_size_limit(child, song, tmp_path):
    wide = replace(task(song, tmp_path / "a"), max_samples=8000)

    with pytest.raises(AudioError, match="too large"):
        child.run(wide, timeout=60)
