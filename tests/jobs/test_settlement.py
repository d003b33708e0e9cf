"""A live job is charged for the audio its worker decodes, never for what a header claims."""

import pytest
from django.core.management import call_command

from accounts.models import CreditEntry
from accounts.selectors import credit_balance
from jobs.models import Job
from jobs.services import job_cost, job_run
from tests.conftest import run_all, upload
from tests.lying_files import lying_m4a, lying_mkv, needs_ffmpeg

pytestmark = [pytest.mark.django_db(transaction=True), needs_ffmpeg]


@pytest.fixture(autouse=True)
def _fake_engine(settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"


def create(live_api, path, tier="pro"):
    data = {"file": upload(path.name, path.read_bytes()), "tier": tier}
    response = live_api.post("/v1/jobs", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def balance_only(user, amount):
    CreditEntry.objects.filter(user=user).delete()
    call_command("grant_credits", email=user.email, amount=amount)


def test_a_container_that_understates_its_length_is_charged_for_the_audio_decoded(
    live_api, user, worker, tmp_path
):
    before = credit_balance(user=user)
    path = lying_mkv(tmp_path / "short.mkv", seconds=125, claims=1.0)
    job_id = create(live_api, path)
    assert credit_balance(user=user) == before - job_cost(tier="pro", duration=1)

    run_all(worker)

    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error_message
    assert job.duration == pytest.approx(125) and job.cost == job_cost(tier="pro", duration=125)
    assert credit_balance(user=user) == before - job_cost(tier="pro", duration=125)
    kinds = CreditEntry.objects.filter(job_id=job_id).values_list("kind", "amount")
    assert sorted(kinds) == [("adjustment", -4), ("cost", -2)]
    assert job.result is not None
    assert job.result["stems"]["vocals"]["duration"] == 125.0


def test_a_container_that_overstates_its_length_gets_the_difference_back(
    live_api, user, worker, tmp_path
):
    before = credit_balance(user=user)
    path = lying_mkv(tmp_path / "long.mkv", seconds=2, claims=200.0)
    job_id = create(live_api, path)
    assert credit_balance(user=user) == before - job_cost(tier="pro", duration=200)

    run_all(worker)

    assert Job.objects.get(pk=job_id).status == "succeeded"
    assert credit_balance(user=user) == before - job_cost(tier="pro", duration=2)


def test_a_settled_job_that_then_fails_gets_back_exactly_what_it_paid(
    live_api, user, worker, tmp_path, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    before = credit_balance(user=user)
    job_id = create(live_api, lying_mkv(tmp_path / "long.mkv", seconds=2, claims=200.0))

    run_all(worker)

    assert Job.objects.get(pk=job_id).error_type == "engine_error"
    assert credit_balance(user=user) == before
    refund = CreditEntry.objects.get(job_id=job_id, kind="refund")
    assert refund.amount == job_cost(tier="pro", duration=2)


def test_when_the_decoded_audio_costs_more_than_the_balance_the_job_fails_and_is_refunded(
    live_api, user, worker, tmp_path, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"  # it must never be reached
    balance_only(user, job_cost(tier="studio", duration=61))
    path = lying_mkv(tmp_path / "short.mkv", seconds=130, claims=1.0)
    job_id = create(live_api, path, tier="studio")

    run_all(worker)

    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_type) == ("failed", "insufficient_credits")
    assert job.error_message == (
        "The audio lasts 130 s once decoded, not the 1 s its header claimed: the job costs "
        "9 credits, 6 more than was charged, and the balance is 3."
    )
    assert credit_balance(user=user) == job_cost(tier="studio", duration=61)
    assert not CreditEntry.objects.filter(job_id=job_id, kind="adjustment").exists()
    amounts = CreditEntry.objects.filter(user=user).order_by("created", "id")
    running = [sum(e.amount for e in amounts[: i + 1]) for i in range(len(amounts))]
    assert min(running) >= 0


def test_a_retried_job_is_settled_once(live_api, user, worker, tmp_path, flaky_results_storage):
    before = credit_balance(user=user)
    job_id = create(live_api, lying_mkv(tmp_path / "short.mkv", seconds=70, claims=1.0))

    run_all(worker)
    job_run(job_id=job_id)  # and a late duplicate delivery

    job = Job.objects.get(pk=job_id)
    assert flaky_results_storage and job.status == "succeeded" and job.attempts == 2
    assert credit_balance(user=user) == before - job_cost(tier="pro", duration=70)
    assert CreditEntry.objects.filter(job_id=job_id).count() == 2


def test_the_duration_limit_holds_against_a_lying_m4a(live_api, user, worker, tmp_path, settings):
    settings.BTRO_MAX_DURATION_SECONDS = 2
    before = credit_balance(user=user)
    job_id = create(live_api, lying_m4a(tmp_path / "short.m4a", seconds=4, claims=0.5))

    run_all(worker)

    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_type) == ("failed", "invalid_audio")
    assert "longer than the limit" in job.error_message
    assert credit_balance(user=user) == before


def test_the_decoded_size_limit_holds_against_a_lying_eight_channel_file(
    live_api, user, worker, tmp_path, settings
):
    settings.BTRO_MAX_DECODED_SAMPLES = 8000 * 2  # one second of stereo at 8 kHz
    before = credit_balance(user=user)
    path = lying_mkv(tmp_path / "wide.mkv", seconds=2, claims=0.01, channels=8)
    job_id = create(live_api, path)

    run_all(worker)

    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_type) == ("failed", "invalid_audio")
    assert "too large to separate" in job.error_message
    assert credit_balance(user=user) == before


def test_a_separation_past_its_memory_budget_fails_the_job_clearly_and_refunds_it(
    live_api, user, worker, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:GreedyEngine"
    settings.BTRO_SEPARATION_MEMORY_MB = 1024
    before = credit_balance(user=user)
    response = live_api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart")

    run_all(worker)

    job = Job.objects.get(pk=response.json()["id"])
    assert (job.status, job.error_type) == ("failed", "out_of_memory")
    assert (
        job.error_message == "Separation needed more than this worker's memory budget of 1024 MB."
    )
    assert credit_balance(user=user) == before
