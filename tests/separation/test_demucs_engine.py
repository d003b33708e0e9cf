"""The demucs engine, run for real on tiny randomly initialised HTDemucs checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.neural

pytest.importorskip("demucs")
pytest.importorskip("torch")

import torch  # noqa: E402

from jobs.separation import TIER_STEMS, EngineUnavailable  # noqa: E402
from jobs.separation.demucs_engine import DemucsEngine, missing_models  # noqa: E402
from tests.neural_models import write_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> DemucsEngine:
    return DemucsEngine(model_dir, device="cpu")


def noise(seconds: float, sample_rate: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = int(seconds * sample_rate) + 3  # an odd length: resampling must not round it off
    return (0.1 * rng.standard_normal((frames, channels))).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("tier", list(TIER_STEMS))
def test_each_tier_gives_its_stems_at_the_input_rate_length_and_channels(
    engine: DemucsEngine, tier: str, channels: int
) -> None:
    audio = noise(1.5, 48000, channels)

    stems = engine.separate(audio, 48000, tier)

    assert list(stems) == list(TIER_STEMS[tier])
    for stem in stems.values():
        assert stem.shape == audio.shape
        assert stem.dtype == np.float32
        assert np.isfinite(stem).all()
        assert np.abs(stem).max() > 0


def test_a_low_sample_rate_and_a_one_dimensional_input_keep_their_shape(
    engine: DemucsEngine,
) -> None:
    audio = noise(1.2, 22050, 1)[:, 0]

    stems = engine.separate(audio, 22050, "pro")

    assert all(stem.shape == audio.shape for stem in stems.values())


def test_more_than_two_channels_are_separated_in_pairs(engine: DemucsEngine) -> None:
    audio = noise(1.0, 44100, 3)

    stems = engine.separate(audio, 44100, "pro")

    assert stems["vocals"].shape == (audio.shape[0], 3)


def test_progress_rises_through_the_chunks_to_100(engine: DemucsEngine) -> None:
    seen: list[float] = []

    engine.separate(noise(5.0, 44100, 2), 44100, "pro", progress=seen.append)

    assert seen[-1] == 100
    assert len(seen) > 2  # five seconds in two-second segments: several chunks
    assert seen == sorted(seen)
    assert all(0 <= p <= 100 for p in seen)


def test_progress_reaches_100_with_shifts_and_a_bag(model_dir: Path) -> None:
    seen: list[float] = []
    engine = DemucsEngine(model_dir, device="cpu", shifts=2, models={"pro": "htdemucs_ft"})

    engine.separate(noise(1.0, 44100, 2), 44100, "pro", progress=seen.append)

    assert seen[-1] == 100
    assert seen == sorted(seen)


def test_vocal_remover_uses_the_ft_vocals_model_and_its_stems_sum_to_the_input(
    engine: DemucsEngine,
) -> None:
    audio = noise(1.0, 32000, 2)

    stems = engine.separate(audio, 32000, "vocal_remover")

    model = engine.model_for("vocal_remover")
    assert not hasattr(model, "models")  # one model, not the bag of four
    assert model.sources[3] == "vocals"
    np.testing.assert_allclose(stems["instrumental"] + stems["vocals"], audio, atol=1e-6)


def test_basic_instrumental_is_the_sum_of_the_other_stems(engine: DemucsEngine) -> None:
    audio = noise(1.0, 44100, 2)

    basic = engine.separate(audio, 44100, "basic")
    pro = engine.separate(audio, 44100, "pro")

    np.testing.assert_allclose(basic["vocals"], pro["vocals"], atol=1e-6)
    rest = pro["drums"] + pro["bass"] + pro["other"]
    np.testing.assert_allclose(basic["instrumental"], rest, atol=1e-5)


@pytest.mark.parametrize(("tier", "model"), [("pro", "htdemucs"), ("studio", "htdemucs_6s")])
def test_the_output_equals_demucs_separator_for_the_same_model_and_settings(
    model_dir: Path, tier: str, model: str
) -> None:
    from demucs.api import Separator

    audio = noise(2.5, 44100, 2)
    ours = DemucsEngine(model_dir, device="cpu", overlap=0.25, shifts=0, segment=1.5)
    theirs = Separator(model, repo=model_dir, device="cpu", shifts=0, overlap=0.25, segment=1.5)

    stems = ours.separate(audio, 44100, tier)
    _, reference = theirs.separate_tensor(torch.from_numpy(audio.T.copy()), 44100)

    assert set(stems) == set(reference)
    for name, stem in stems.items():
        np.testing.assert_allclose(stem, reference[name].numpy().T, rtol=1e-5, atol=1e-6)


def test_a_missing_model_folder_is_named_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"

    with pytest.raises(EngineUnavailable) as error:
        DemucsEngine(folder).separate(noise(0.5, 44100, 2), 44100, "pro")

    assert str(folder) in str(error.value)
    assert "fetch_models" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    write_model_dir(tmp_path, names=("htdemucs_6s",))
    checkpoint = next(tmp_path.glob("5c90dfd2-*.th"))
    checkpoint.unlink()

    with pytest.raises(EngineUnavailable, match="5c90dfd2") as error:
        DemucsEngine(tmp_path).separate(noise(0.5, 44100, 2), 44100, "studio")

    assert str(tmp_path) in str(error.value)


def test_a_corrupt_checkpoint_fails_its_checksum(tmp_path: Path) -> None:
    write_model_dir(tmp_path, names=("htdemucs",))
    checkpoint = next(tmp_path.glob("955717e8-*.th"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])

    with pytest.raises(EngineUnavailable, match="checksum"):
        DemucsEngine(tmp_path).separate(noise(0.5, 44100, 2), 44100, "pro")


def test_missing_models_lists_each_absent_file(model_dir: Path, tmp_path: Path) -> None:
    assert missing_models(model_dir) == []
    assert missing_models(tmp_path / "nowhere") == [
        f"Demucs model folder {tmp_path / 'nowhere'} does not exist; "
        "run `python manage.py fetch_models`."
    ]
    write_model_dir(tmp_path, names=("htdemucs",))

    messages = missing_models(tmp_path)

    assert any("htdemucs_6s.yaml" in message for message in messages)
    assert any("htdemucs_ft.yaml" in message for message in messages)
    assert missing_models(tmp_path, {"studio": "htdemucs", "vocal_remover": "htdemucs"}) == []
    assert missing_models(tmp_path, tiers=["pro"]) == []


def test_a_model_without_the_tiers_stems_is_refused(model_dir: Path) -> None:
    engine = DemucsEngine(model_dir, models={"studio": "htdemucs"})

    with pytest.raises(EngineUnavailable, match="guitar"):
        engine.separate(noise(0.5, 44100, 2), 44100, "studio")


# Django: the system check and the `separate` command ---------------------------------------


def test_the_system_check_names_a_missing_model_folder(tmp_path: Path) -> None:
    from django.core import checks
    from django.test import override_settings

    from jobs.checks import check_demucs_models

    folder = tmp_path / "models"
    with override_settings(BTRO_ENGINE="demucs", BTRO_MODEL_DIR=str(folder)):
        errors = check_demucs_models(None)
        registered = [e for e in checks.run_checks() if str(folder) in e.msg]

    assert errors and all(isinstance(e, checks.Error) for e in errors)
    assert str(folder) in errors[0].msg
    assert errors[0].id == "btro.E002"
    assert [e.msg for e in registered] == [e.msg for e in errors]


def test_the_system_check_is_silent_when_demucs_is_unused_or_ready(
    tmp_path: Path, model_dir: Path
) -> None:
    from django.test import override_settings

    from jobs.checks import check_demucs_models

    with override_settings(BTRO_ENGINE="dsp", BTRO_ENGINE_BY_TIER={}, BTRO_MODEL_DIR="/nope"):
        assert check_demucs_models(None) == []
    with override_settings(BTRO_ENGINE="dsp", BTRO_ENGINE_BY_TIER={"studio": "demucs"}):
        with override_settings(BTRO_MODEL_DIR=str(model_dir)):
            assert check_demucs_models(None) == []
        with override_settings(BTRO_MODEL_DIR=str(tmp_path)):
            write_model_dir(tmp_path, names=("htdemucs",))  # no htdemucs_6s: studio's model
            assert [e.id for e in check_demucs_models(None)] == ["btro.E002"]


def test_the_system_check_reports_a_missing_demucs_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import override_settings

    from jobs import checks as btro_checks

    real_find_spec = btro_checks.importlib.util.find_spec
    monkeypatch.setattr(
        btro_checks.importlib.util,
        "find_spec",
        lambda name: None if name == "demucs" else real_find_spec(name),
    )
    with override_settings(BTRO_ENGINE="demucs"):
        errors = btro_checks.check_demucs_models(None)

    assert [e.id for e in errors] == ["btro.E001"]
    assert errors[0].hint is not None and "requirements-neural.txt" in errors[0].hint


def test_fetch_models_fails_in_one_line_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from django.core.management import CommandError, call_command

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)

    with pytest.raises(CommandError) as error:
        call_command("fetch_models", "--models", "htdemucs", "--model-dir", str(tmp_path))

    assert "dl.fbaipublicfiles.com" in str(error.value)
    assert "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_fetch_models_keeps_files_already_present_and_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from django.core.management import call_command

    from jobs.separation import fetch

    payload = b"not really a checkpoint"
    fetched: list[str] = []

    class Response:
        def __init__(self, url: str) -> None:
            fetched.append(url)
            self.chunks = [payload]
            self.headers = {"Content-Length": str(len(payload))}

        def read(self, size: int) -> bytes:
            return self.chunks.pop() if self.chunks else b""

        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    digest = fetch.sha256_hex(payload)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(url))
    monkeypatch.setattr(
        fetch, "remote_files", lambda: {"955717e8": f"https://x/955717e8-{digest[:8]}.th"}
    )

    call_command("fetch_models", "--models", "htdemucs", "--model-dir", str(tmp_path))
    call_command("fetch_models", "--models", "htdemucs", "--model-dir", str(tmp_path))

    assert len(fetched) == 1
    assert (tmp_path / f"955717e8-{digest[:8]}.th").read_bytes() == payload
    assert (tmp_path / "htdemucs.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"955717e8-{digest[:8]}.th",
        "htdemucs.yaml",
    ]


def test_fetch_models_rejects_a_download_with_the_wrong_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import urllib.request

    from django.core.management import CommandError, call_command

    from jobs.separation import fetch

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"tampered"))
    monkeypatch.setattr(
        fetch, "remote_files", lambda: {"955717e8": "https://x/955717e8-00000000.th"}
    )

    with pytest.raises(CommandError, match="sha256"):
        call_command("fetch_models", "--models", "htdemucs", "--model-dir", str(tmp_path))

    assert not list(tmp_path.iterdir())


def test_manage_py_separate_runs_the_demucs_engine(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import soundfile as sf
    from django.core.management import call_command
    from django.test import override_settings

    import jobs.separation

    monkeypatch.setattr(jobs.separation, "_engines", {})  # an engine built for another model folder
    track = tmp_path / "track.wav"
    audio = noise(1.0, 48000, 2)
    sf.write(track, audio, 48000)
    out = tmp_path / "out"

    with override_settings(BTRO_MODEL_DIR=str(model_dir)):
        call_command(
            "separate", str(track), "--tier", "pro", "--engine", "demucs", "--out", str(out)
        )

    for stem in TIER_STEMS["pro"]:
        data, rate = sf.read(out / f"{stem}.wav", dtype="float32")
        assert rate == 48000
        assert data.shape == audio.shape
