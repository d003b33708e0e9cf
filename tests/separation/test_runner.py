"""The separation child process: answers go to the task that asked, whatever happens."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jobs.separation import AudioError
from jobs.separation.runner import ChildCrashed, SeparationProcess, Task, TimedOut


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
