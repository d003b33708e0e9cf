"""Live jobs through the real actor, an in-process Dramatiq worker and the StubBroker."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
import soundfile as sf
import time_machine
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from accounts.models import CreditEntry
from accounts.selectors import credit_balance
from jobs.models import Job
from jobs.services import job_cost, job_run, job_sweep
from tests.conftest import run_all, upload, wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def create(live_api, tier="pro", seconds=1.0, **extra):
    data = {"file": upload(data=wav_bytes(seconds)), "tier": tier, **extra}
    return live_api.post("/v1/jobs", data, format="multipart")


def test_a_live_job_is_separated_by_the_dsp_engine_and_its_stems_download(live_api, worker):
    response = create(live_api, "pro", seconds=2.0)
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["id"].startswith("job_") and not job["id"].startswith("job_test_")
    assert job["livemode"] is True and job["status"] == "queued"
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "succeeded", body
    assert body["result"]["engine"] == "dsp" and body["progress"] == 100
    assert list(body["result"]["stems"]) == ["vocals", "drums", "bass", "other"]
    for info in body["result"]["stems"].values():
        data = b"".join(live_api.get(info["url"]).streaming_content)
        audio, rate = sf.read(io.BytesIO(data))
        assert rate == 44100 and len(audio) == 88200 and audio.shape[1] == 2
        assert info["duration"] == 2.0 and info["bytes"] == len(data)


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_the_format_parameter_sets_the_stem_encoding(live_api, worker, settings, fmt):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api, "basic", format=fmt).json()
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    url = body["result"]["stems"]["vocals"]["url"]
    assert url.endswith(f"/vocals.{fmt}") and body["result"]["format"] == fmt
    response = live_api.get(url)
    audio, _ = sf.read(io.BytesIO(b"".join(response.streaming_content)))
    assert abs(len(audio) - 44100) < 2000  # MP3 pads by a frame or two


def test_an_upload_that_turns_out_undecodable_fails_with_a_message_and_is_refunded(
    live_api, user, worker
):
    before = credit_balance(user=user)
    job = create(live_api).json()
    stored = Job.objects.get(pk=job["id"])
    worker_paused = Path(default_storage.path(stored.input_name))
    worker_paused.write_bytes(worker_paused.read_bytes()[:60])  # truncate behind our back
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "failed" and body["result"] is None
    assert body["error"]["type"] == "invalid_audio" and body["error"]["message"]
    assert credit_balance(user=user) == before


def test_an_engine_error_fails_the_job_and_refunds_it(live_api, user, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    before = credit_balance(user=user)
    job = create(live_api).json()
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    assert body["error"] == {
        "type": "engine_error",
        "message": "The fake engine refuses this track.",
    }
    assert credit_balance(user=user) == before


def test_an_engine_that_kills_its_process_every_time_ends_failed_after_bounded_attempts(
    live_api, user, worker, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:SuicidalEngine"
    before = credit_balance(user=user)
    job = create(live_api).json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "failed" and stored.error_type == "engine_crashed"
    assert stored.attempts == settings.BTRO_JOB_MAX_ATTEMPTS
    assert credit_balance(user=user) == before


def test_credits_run_out_with_402_and_nothing_is_queued(live_api, user, worker, settings):
    CreditEntry.objects.filter(user=user).delete()
    call_command("grant_credits", email=user.email, amount=job_cost(tier="studio", duration=1))
    assert create(live_api, "studio").status_code == 201
    response = create(live_api, "studio")
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"
    assert Job.objects.filter(livemode=True).count() == 1
    assert credit_balance(user=user) == 0


def test_a_failed_job_gives_its_credits_back(live_api, user, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    CreditEntry.objects.filter(user=user).delete()
    call_command("grant_credits", email=user.email, amount=job_cost(tier="pro", duration=1))
    create(live_api)
    assert create(live_api).status_code == 402
    run_all(worker)
    assert credit_balance(user=user) == job_cost(tier="pro", duration=1)
    assert create(live_api).status_code == 201


def test_a_job_costs_its_tiers_price_per_started_minute(settings):
    settings.BTRO_CREDITS_PER_MINUTE = {"pro": 2}
    assert job_cost(tier="pro", duration=1) == 2
    assert job_cost(tier="pro", duration=60) == 2
    assert job_cost(tier="pro", duration=61) == 4


def test_a_second_delivery_of_the_same_message_does_nothing(live_api, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api).json()
    run_all(worker)
    finished = Job.objects.get(pk=job["id"])
    job_run(job_id=job["id"])
    again = Job.objects.get(pk=job["id"])
    assert again.attempts == finished.attempts == 1
    assert again.completed_at == finished.completed_at


def create_unsent(live_api, monkeypatch) -> dict:
    """A job whose message never reaches the broker, so no worker can take it meanwhile."""
    with monkeypatch.context() as patch:
        patch.setattr("jobs.services.state._enqueue", lambda job_id, **options: None)
        return create(live_api).json()


def test_the_sweep_requeues_a_job_whose_worker_died_and_it_succeeds_once(
    live_api, worker, settings, monkeypatch
):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create_unsent(live_api, monkeypatch)  # the message is lost with its worker
    Job.objects.filter(pk=job["id"]).update(
        claim="dead-worker", heartbeat_at=timezone.now() - timedelta(minutes=10), attempts=1
    )
    assert job_sweep()["requeued"] == 1
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "succeeded" and stored.attempts == 2
    assert CreditEntry.objects.filter(job_id=stored.id).count() == 1


def test_the_sweep_requeues_a_job_whose_message_was_lost(live_api, worker, settings, monkeypatch):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create_unsent(live_api, monkeypatch)
    assert job_sweep()["requeued"] == 0  # not stale yet
    Job.objects.filter(pk=job["id"]).update(enqueued_at=timezone.now() - timedelta(minutes=10))
    assert job_sweep()["requeued"] == 1
    run_all(worker)
    assert Job.objects.get(pk=job["id"]).status == "succeeded"


def test_expiry_deletes_the_input_and_stems_and_the_job_answers_410(live_api, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api, "basic").json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    names = [stored.input_name, f"results/{stored.id}/vocals.wav"]
    assert all(default_storage.exists(name) for name in names)
    assert stored.completed_at is not None
    with time_machine.travel(stored.completed_at + timedelta(hours=1), tick=False):
        assert live_api.get(f"/v1/jobs/{job['id']}").status_code == 410  # before the sweep
        assert job_sweep()["purged"] == 1
    assert not any(default_storage.exists(name) for name in names)
    assert Job.objects.get(pk=job["id"]).purged_at is not None


def test_progress_is_visible_while_the_job_runs(live_api, worker, settings):
    import time

    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    job = create(live_api).json()
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = Job.objects.get(pk=job["id"])
        seen.add(stored.progress)
        if stored.status != "queued":
            break
        time.sleep(0.2)
    run_all(worker)
    assert any(0 < p < 100 for p in seen), seen


def test_a_job_past_its_time_limit_is_stopped_and_failed(live_api, user, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    settings.BTRO_JOB_TIME_LIMIT_SECONDS = 1
    before = credit_balance(user=user)
    job = create(live_api).json()
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "failed" and body["error"]["type"] == "timeout"
    assert credit_balance(user=user) == before


def test_a_transient_storage_error_is_retried_then_the_job_succeeds(
    live_api, worker, settings, flaky_results_storage
):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api).json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert flaky_results_storage and stored.status == "succeeded" and stored.attempts == 2


def test_a_transient_error_that_persists_ends_failed_after_bounded_attempts(
    live_api, user, worker, settings, monkeypatch
):
    from django.core.files.storage import FileSystemStorage

    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    real_save = FileSystemStorage.save

    def broken_save(self, name, content, **kwargs):
        if name.startswith("results/"):
            raise OSError("storage down")
        return real_save(self, name, content, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", broken_save)
    before = credit_balance(user=user)
    job = create(live_api).json()
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "failed" and stored.error_type == "api_error"
    assert stored.attempts == settings.BTRO_JOB_MAX_ATTEMPTS
    assert credit_balance(user=user) == before
