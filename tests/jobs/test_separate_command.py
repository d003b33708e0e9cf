"""`manage.py separate`: stems written per tier and format, one-line errors on bad input."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.management import CommandError, call_command

import jobs.separation
from jobs.separation import TIER_STEMS
from jobs.separation.dsp import DspEngine
from jobs.separation.runner import Task, run_task
from tests.fake_engines import CountingEngine

SR = 22050
ROOT = Path(__file__).resolve().parents[2]


def no_models(tmp_path: Path) -> dict[str, str]:
    """The environment of a `manage.py` child whose auto engine finds no checkpoints."""
    return {**os.environ, "BTRO_MODEL_DIR": str(tmp_path / "models")}


@pytest.fixture(autouse=True)
def fresh_engines(monkeypatch):
    monkeypatch.setattr(jobs.separation, "_engines", {})


@pytest.fixture
def track(tmp_path: Path) -> Path:
    t = np.arange(2 * SR) / SR
    audio = np.stack([np.sin(2 * np.pi * 110 * t), np.sin(2 * np.pi * 330 * t)], axis=1)
    path = tmp_path / "track.flac"
    sf.write(path, (0.3 * audio).astype(np.float32), SR)
    return path


@pytest.mark.parametrize("tier", list(TIER_STEMS))
def test_it_writes_every_stem_of_the_tier(tmp_path, track, tier):
    out = tmp_path / "stems"

    call_command("separate", str(track), "--tier", tier, "--engine", "dsp", "--out", str(out))

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.wav" for s in TIER_STEMS[tier])
    data, rate = sf.read(out / "vocals.wav", dtype="float32")
    assert rate == SR and data.shape == (2 * SR, 2)


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_it_writes_the_format_asked_for(tmp_path, track, fmt):
    out = tmp_path / "stems"

    call_command("separate", str(track), "--tier", "basic", "--format", fmt, "--out", str(out))

    assert sf.info(str(out / f"vocals.{fmt}")).format == fmt.upper()


def test_a_mono_input_gives_mono_stems(tmp_path):
    path = tmp_path / "mono.wav"
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32), SR)

    call_command("separate", str(path), "--tier", "basic", "--out", str(tmp_path / "o"))

    assert sf.info(str(tmp_path / "o" / "instrumental.wav")).channels == 1


def test_it_uses_the_engine_the_runner_already_built(tmp_path, track, settings, monkeypatch):
    settings.BTRO_ENGINE = "tests.fake_engines:CountingEngine"
    monkeypatch.setattr(CountingEngine, "built", 0)
    (tmp_path / "a").mkdir()
    run_task(
        Task(str(track), "pro", settings.BTRO_ENGINE, str(tmp_path / "a")), lambda percent: None
    )

    call_command("separate", str(track), "--tier", "pro", "--out", str(tmp_path / "b"))

    assert CountingEngine.built == 1
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        f"{stem}.wav" for stem in sorted(TIER_STEMS["pro"])
    ]


def test_it_refuses_a_file_that_is_not_audio(tmp_path):
    path = tmp_path / "song.mp3"
    path.write_text("not audio at all\n" * 100)

    with pytest.raises(CommandError, match="not audio"):
        call_command("separate", str(path), "--tier", "pro", "--out", str(tmp_path / "o"))

    assert not (tmp_path / "o").exists()


def test_an_engine_that_fails_leaves_no_output_folder(tmp_path, track, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"

    with pytest.raises(CommandError, match="refuses this track"):
        call_command("separate", str(track), "--tier", "pro", "--out", str(tmp_path / "o"))

    assert not (tmp_path / "o").exists()


def test_an_engine_that_fails_half_way_through_its_wav_stems_leaves_no_output_folder(
    tmp_path, track, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:HalfWayEngine"

    with pytest.raises(CommandError, match="half way"):
        call_command("separate", str(track), "--tier", "pro", "--out", str(tmp_path / "o"))

    assert not (tmp_path / "o").exists()


def test_a_full_disk_is_an_error_before_any_stem_is_written(tmp_path, track, monkeypatch):
    # Stems are maps of their files: space is taken when they are made, so a full disk is an
    # OSError then, not a SIGBUS in the middle of the separation.
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)

    with pytest.raises(CommandError, match="No space left on device"):
        call_command("separate", str(track), "--tier", "pro", "--out", str(tmp_path / "o"))

    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_wav_stems_written_in_place_are_the_engines_stems(tmp_path, channels):
    path = tmp_path / "song.wav"
    audio = np.random.default_rng(channels).normal(0, 0.1, (3 * SR, channels))
    sf.write(path, audio.astype(np.float32), SR, subtype="FLOAT")
    expected = DspEngine(chunk_seconds=1.0, overlap_seconds=0.25).separate(
        sf.read(path, dtype="float32", always_2d=True)[0], SR, "pro"
    )

    outcome = run_task(
        Task(str(path), "pro", "dsp", str(tmp_path / "o"), engine_options={"chunk_seconds": 1.0,
             "overlap_seconds": 0.25}),
        lambda percent: None,
    )  # fmt: skip

    assert outcome is not None
    for stem, x in expected.items():
        data, rate = sf.read(outcome.stems[stem]["path"], dtype="float32", always_2d=True)
        assert rate == SR and sf.info(outcome.stems[stem]["path"]).subtype == "FLOAT"
        np.testing.assert_array_equal(data, x)
        assert outcome.stems[stem]["bytes"] == (tmp_path / "o" / f"{stem}.wav").stat().st_size


def test_it_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="could not be opened"):
        call_command("separate", str(tmp_path / "x.wav"), "--tier", "pro", "--out", str(tmp_path))


def test_it_refuses_an_unknown_tier(tmp_path, track):
    with pytest.raises(CommandError):
        call_command("separate", str(track), "--tier", "gold", "--out", str(tmp_path))


def test_the_cli_fails_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()

    done = subprocess.run(
        [sys.executable, "manage.py", "separate", str(path), "--tier", "pro", "--out", "x"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=no_models(tmp_path),
    )  # fmt: skip

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "CommandError: The file is empty."


def test_the_cli_keeps_stderr_quiet_when_it_is_not_a_terminal(tmp_path, track):
    out = tmp_path / "o"

    done = subprocess.run(
        [sys.executable, "manage.py", "separate", str(track), "--tier", "basic", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=no_models(tmp_path),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.split() == [str(out / "vocals.wav"), str(out / "instrumental.wav")]
