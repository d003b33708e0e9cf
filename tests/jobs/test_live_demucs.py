"""A platform set to the demucs engine runs live jobs through it (tiny random models)."""

import pytest

pytest.importorskip("demucs")

from jobs.models import Job  # noqa: E402
from jobs.separation import TIER_STEMS  # noqa: E402
from tests.jobs.test_live_jobs import create, run_all  # noqa: E402
from tests.neural_models import write_model_dir  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("tier", list(TIER_STEMS))
def test_live_jobs_succeed_on_the_demucs_engine_for_every_tier(
    live_api,
    worker,
    settings,
    tmp_path,
    tier,
):
    settings.BTRO_ENGINE = "demucs"
    settings.BTRO_MODEL_DIR = str(write_model_dir(tmp_path / "models"))
    settings.BTRO_DEMUCS = {**settings.BTRO_DEMUCS, "device": "cpu", "threads": 1}
    job = create(live_api, tier).json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "succeeded", stored.error_message
    assert stored.result is not None
    assert stored.result["engine"] == "demucs"
    assert sorted(stored.result["stems"]) == sorted(TIER_STEMS[tier])
    assert all(s["duration"] == 1.0 for s in stored.result["stems"].values())


def test_a_missing_model_folder_fails_the_job_with_its_path(live_api, worker, settings, tmp_path):
    settings.BTRO_ENGINE = "demucs"
    settings.BTRO_MODEL_DIR = str(tmp_path / "no-models-here")
    job = create(live_api).json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "failed" and stored.error_type == "engine_error"
    assert "no-models-here" in stored.error_message


def test_on_auto_a_tier_with_checkpoints_runs_on_demucs_and_one_without_on_dsp(
    live_api, worker, settings, tmp_path
):
    settings.BTRO_ENGINE = "auto"
    settings.BTRO_ENGINE_BY_TIER = {}
    settings.BTRO_MODEL_DIR = str(write_model_dir(tmp_path / "models", names=("htdemucs",)))
    settings.BTRO_DEMUCS = {**settings.BTRO_DEMUCS, "device": "cpu", "threads": 1}
    pro, studio = create(live_api, "pro").json(), create(live_api, "studio").json()
    run_all(worker)
    for job, engine in ((pro, "demucs"), (studio, "dsp")):
        stored = Job.objects.get(pk=job["id"])
        assert stored.status == "succeeded", stored.error_message
        assert stored.result is not None
        assert stored.result["engine"] == engine
