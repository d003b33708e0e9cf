"""GET /v1/balance and GET /v1/usage: the ledger and the dashboard's Usage chart, over the API."""

from datetime import UTC, datetime

import pytest
import time_machine

from accounts.selectors import credit_balance
from accounts.services import api_key_create
from jobs.models import Job
from jobs.services import job_claim, job_fail
from tests.conftest import client_for, stored_job, upload, wav_bytes

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def create(client, tier="pro", seconds=90.0):
    data = {"file": upload(data=wav_bytes(seconds, sample_rate=8000, channels=1)), "tier": tier}
    response = client.post("/v1/jobs", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def claimed(job_id: str) -> Job:
    """The job, claimed by a run as a worker would."""
    job = job_claim(job_id=job_id)
    assert job is not None
    return job


def test_the_balance_equals_the_ledger_after_a_live_job_and_after_its_refund(live_api, user):
    before = live_api.get("/v1/balance").json()["available"]
    job_id = create(live_api, "pro", seconds=90)
    after_job = live_api.get("/v1/balance").json()
    assert after_job["available"] == credit_balance(user=user) == before - 2 * 2
    assert after_job["object"] == "balance" and after_job["livemode"] is True
    job_fail(job=claimed(job_id), error_type="engine_error", message="boom")
    assert live_api.get("/v1/balance").json()["available"] == credit_balance(user=user) == before


def test_the_prices_follow_the_credits_per_minute_setting(live_api, settings):
    settings.BTRO_CREDITS_PER_MINUTE = {"basic": 5, "pro": 7, "studio": 11, "vocal_remover": 13}
    body = live_api.get("/v1/balance").json()
    assert body["prices"] == {"basic": 5, "pro": 7, "studio": 11, "vocal_remover": 13}
    assert body["unit"] == "credits per started minute of audio"


def test_a_test_key_sees_the_live_balance_and_its_jobs_leave_it_untouched(api, user):
    before = credit_balance(user=user)
    create(api, "studio")
    body = api.get("/v1/balance").json()
    assert body["available"] == before and body["livemode"] is False


@time_machine.travel(NOW, tick=False)
def test_usage_matches_the_dashboard_chart_for_the_same_account_and_period(client, user, live_api):
    stored_job(user, tier="pro", seconds=90)
    stored_job(user, tier="pro", seconds=30)
    stored_job(user, tier="basic", seconds=60, days_ago=3)
    stored_job(user, tier="studio", seconds=600, status=Job.Status.FAILED)  # refunded
    stored_job(user, tier="studio", seconds=600, days_ago=40)  # before the window
    stored_job(user, tier="basic", seconds=600, livemode=False)
    client.force_login(user)
    chart = client.get("/usage/").context["chart"]
    first_day = datetime(2026, 10, 27, tzinfo=UTC)  # the chart's 30 days end today
    tomorrow = datetime(2026, 11, 26, tzinfo=UTC)
    query = {"start": int(first_day.timestamp()), "end": int(tomorrow.timestamp())}
    body = live_api.get("/v1/usage", query).json()
    assert body["object"] == "usage" and body["livemode"] is True
    assert (body["start"], body["end"]) == (query["start"], query["end"])
    totals: dict[str, float] = {}
    for row in body["data"]:
        totals[row["tier"]] = totals.get(row["tier"], 0) + row["minutes"]
    shown = {tier: total for tier, _, total in chart.legend if total != "0"}
    assert {tier: f"{minutes:g}" for tier, minutes in totals.items()} == shown
    assert [(row["date"], row["tier"], row["minutes"]) for row in body["data"]] == [
        ("2026-11-22", "basic", 1.0),
        ("2026-11-25", "pro", 2.0),
    ]


@time_machine.travel(NOW, tick=False)
def test_usage_credits_are_what_the_ledger_charged_for_the_days_jobs(live_api, user):
    kept = create(live_api, "pro", seconds=90)  # 2 started minutes at 2 credits
    failed = create(live_api, "studio", seconds=30)
    job_fail(job=claimed(failed), error_type="engine_error", message="boom")
    body = live_api.get("/v1/usage").json()
    assert body["end"] == int(NOW.timestamp()) + 1  # a job created this second is counted
    assert body["end"] - body["start"] == 30 * 86400
    assert body["data"] == [{"date": "2026-11-25", "tier": "pro", "minutes": 1.5, "credits": 4}]
    assert Job.objects.get(pk=kept).cost == 4


def test_a_test_key_sees_its_free_test_usage_only(api, live_api, user):
    create(live_api, "pro", seconds=90)
    create(api, "basic", seconds=60)
    body = api.get("/v1/usage").json()
    assert body["livemode"] is False
    assert [(r["tier"], r["credits"]) for r in body["data"]] == [("basic", 0)]
    assert [r["tier"] for r in live_api.get("/v1/usage").json()["data"]] == ["pro"]


def test_another_accounts_usage_and_balance_never_appear(live_api, user, other_user):
    other = client_for(api_key_create(user=other_user, mode="live")[1])
    create(other, "studio", seconds=120)
    assert live_api.get("/v1/usage").json()["data"] == []
    assert live_api.get("/v1/balance").json()["available"] == credit_balance(user=user)
    assert other.get("/v1/balance").json()["available"] == credit_balance(user=other_user)
    assert credit_balance(user=user) != credit_balance(user=other_user)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "-5"}, "end"),
        ({"start": "2000", "end": "1000"}, "end"),
        ({"start": "1000", "end": "1000"}, "end"),
        ({"start": "0", "end": str(367 * 86400)}, "end"),
        ({"start": "99999999999999999999"}, "start"),
    ],
)
def test_bad_start_or_end_is_a_400_naming_the_parameter(live_api, query, param):
    response = live_api.get("/v1/usage", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_parameter" and error["param"] == param


@pytest.mark.parametrize("path", ["/v1/balance", "/v1/usage"])
def test_balance_and_usage_need_a_key(db, path):
    response = client_for(None).get(path)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_balance_and_usage_count_against_the_read_limit(live_api, settings):
    settings.BTRO_RATE_READ = "2/m"
    assert live_api.get("/v1/balance").status_code == 200
    assert live_api.get("/v1/usage").status_code == 200
    response = live_api.get("/v1/balance")
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
