"""BTRO_ENGINE=auto: a tier runs on demucs when PyTorch, demucs and its checkpoints are here,
else on dsp, and `manage.py check`, /readyz and the dashboard say which and why."""

from __future__ import annotations

import html
import importlib.util
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from jobs import engines
from jobs.engines import engine_choice, engine_choices_forget, queue_for


@pytest.fixture(autouse=True)
def _auto(settings):
    settings.BTRO_ENGINE = "auto"
    settings.BTRO_ENGINE_BY_TIER = {}


@pytest.fixture
def htdemucs_only(settings, tmp_path) -> Path:
    """Checkpoints for basic and pro (htdemucs), none for studio or vocal_remover."""
    pytest.importorskip("demucs")
    from tests.neural_models import write_model_dir

    settings.BTRO_MODEL_DIR = str(write_model_dir(tmp_path / "ckpt", names=("htdemucs",)))
    return Path(settings.BTRO_MODEL_DIR)


def hide(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util, "find_spec", lambda name: None if name == module else real(name)
    )
    engine_choices_forget()  # the folder did not change: the kept answer would still hold


def test_a_tier_whose_checkpoints_are_present_runs_on_demucs_and_its_queue(htdemucs_only):
    assert engine_choice("pro") == ("demucs", "auto: htdemucs checkpoints in BTRO_MODEL_DIR")
    assert engine_choice("basic").engine == "demucs"
    assert queue_for("pro") == "separate.demucs"
    assert engine_choice("studio") == ("dsp", "auto: no htdemucs_6s checkpoints in BTRO_MODEL_DIR")
    assert queue_for("studio") == "separate.dsp"


def test_without_checkpoints_every_tier_runs_on_dsp(settings, tmp_path):
    (tmp_path / "empty").mkdir()
    settings.BTRO_MODEL_DIR = str(tmp_path / "empty")
    for tier, model in {"basic": "htdemucs", "vocal_remover": "htdemucs_ft"}.items():
        assert engine_choice(tier) == ("dsp", f"auto: no {model} checkpoints in BTRO_MODEL_DIR")
        assert queue_for(tier) == "separate.dsp"


@pytest.mark.parametrize("module, label", [("torch", "PyTorch"), ("demucs", "demucs")])
def test_without_pytorch_or_demucs_checkpoints_do_not_matter(
    htdemucs_only, monkeypatch, module, label
):
    hide(monkeypatch, module)
    assert engine_choice("pro") == ("dsp", f"auto: {label} not installed")
    assert queue_for("pro") == "separate.dsp"


def test_a_named_engine_wins_over_the_checkpoints(htdemucs_only, settings):
    settings.BTRO_ENGINE_BY_TIER = {"pro": "dsp", "studio": "demucs"}
    assert engine_choice("pro") == ("dsp", "BTRO_ENGINE_BY_TIER=dsp")
    assert engine_choice("studio") == ("demucs", "BTRO_ENGINE_BY_TIER=demucs")
    settings.BTRO_ENGINE = "dsp"
    assert engine_choice("basic") == ("dsp", "BTRO_ENGINE=dsp")


def test_the_choice_is_kept_until_the_model_folder_changes(settings, tmp_path, monkeypatch):
    pytest.importorskip("demucs")
    from tests.neural_models import write_model_dir

    folder = tmp_path / "ckpt"
    folder.mkdir()
    settings.BTRO_MODEL_DIR = str(folder)
    calls: list[str] = []
    real = importlib.util.find_spec

    def find_spec(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(engines.importlib.util, "find_spec", find_spec)
    assert engine_choice("pro").engine == "dsp"
    looked = len(calls)
    assert engine_choice("pro").engine == engine_choice("studio").engine == "dsp"
    assert len(calls) == looked  # kept: a stat of the folder per call, nothing more
    write_model_dir(folder, names=("htdemucs",))  # `make models` while the server runs
    assert engine_choice("pro").engine == "demucs"
    assert len(calls) > looked


def test_a_torn_bag_file_sends_the_tier_to_dsp_instead_of_failing_the_request(
    settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: object())
    (tmp_path / "htdemucs.yaml").write_text("models: [unclosed")
    settings.BTRO_MODEL_DIR = str(tmp_path)
    assert engine_choice("pro") == ("dsp", "auto: the htdemucs bag in BTRO_MODEL_DIR is unreadable")


def test_check_prints_each_tiers_engine_and_passes_when_auto_falls_back(htdemucs_only):
    out = io.StringIO()
    call_command("check", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Engines (BTRO_MODEL_DIR={htdemucs_only}):"
    assert lines[1].split(None, 2) == [
        "basic",
        "demucs",
        "auto: htdemucs checkpoints in BTRO_MODEL_DIR",
    ]
    assert lines[3].split(None, 2) == [
        "studio",
        "dsp",
        "auto: no htdemucs_6s checkpoints in BTRO_MODEL_DIR",
    ]
    assert "System check identified no issues" in lines[-1]


@pytest.mark.django_db
def test_readyz_lists_each_tiers_engine_and_is_ready_when_auto_falls_back(
    client, htdemucs_only, monkeypatch
):
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["engines"]["pro"] == {
        "engine": "demucs",
        "reason": "auto: htdemucs checkpoints in BTRO_MODEL_DIR",
    }
    assert body["engines"]["studio"]["engine"] == "dsp"
    assert str(htdemucs_only) not in json.dumps(body)  # /readyz names no path
    hide(monkeypatch, "torch")
    out = io.StringIO()
    call_command("readyz", stdout=out)
    engines_now = json.loads(out.getvalue())["engines"]
    assert engines_now["pro"] == {"engine": "dsp", "reason": "auto: PyTorch not installed"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/docs/"])
def test_the_tier_tables_have_an_engine_column(client, htdemucs_only, path):
    page = html.unescape(client.get(path).content.decode())
    assert ">Engine</th>" in page or ">engine</th>" in page
    row = page[page.index('<td class="mono">studio</td>') :].split("</tr>")[0]
    assert '<span class="mono">dsp</span>' in row
    assert "auto: no htdemucs_6s checkpoints in BTRO_MODEL_DIR" in row
    row = page[page.index('<td class="mono">pro</td>') :].split("</tr>")[0]
    assert '<span class="mono">demucs</span>' in row
