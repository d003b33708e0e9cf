import io
from datetime import timedelta

import pytest
import soundfile as sf
import time_machine
from django.utils import timezone

from accounts.models import CreditEntry
from jobs.separation import TIER_STEMS
from tests.conftest import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def create(api, tier="pro"):
    return api.post("/v1/jobs", {"file": upload(), "tier": tier}, format="multipart").json()


def poll(api, job_id):
    return api.get(f"/v1/jobs/{job_id}")


def test_a_test_job_is_queued_until_2_s_after_creation_then_succeeded(api, clock):
    job = create(api)
    clock.shift(timedelta(seconds=1.999))
    assert poll(api, job["id"]).json()["status"] == "queued"
    clock.shift(timedelta(milliseconds=1))
    body = poll(api, job["id"]).json()
    assert body["status"] == "succeeded"
    assert body["progress"] == 100
    assert body["completed_at"] == job["created"] + 2
    assert body["expires_at"] == body["completed_at"] + 3600


@pytest.mark.parametrize("tier", list(TIER_STEMS))
def test_each_tier_has_a_fixed_result_whose_stems_download_and_decode(api, clock, tier):
    job = create(api, tier)
    clock.shift(timedelta(seconds=2))
    result = poll(api, job["id"]).json()["result"]
    assert list(result["stems"]) == list(TIER_STEMS[tier])
    assert result["format"] == "wav" and result["engine"] == "test"
    for stem, info in result["stems"].items():
        response = api.get(info["url"])
        assert response.status_code == 200
        assert response["Content-Disposition"] == f'attachment; filename="track-{stem}.wav"'
        data = b"".join(response.streaming_content)
        assert len(data) == info["bytes"]
        audio, rate = sf.read(io.BytesIO(data))
        assert rate == result["sample_rate"]
        assert abs(len(audio) / rate - info["duration"]) < 0.01
        assert abs(audio).max() > 0.01  # real sound, not silence


def test_a_second_test_job_of_the_same_tier_gets_the_same_stems(api, clock):
    first, second = create(api), create(api)
    clock.shift(timedelta(seconds=2))
    a = poll(api, first["id"]).json()["result"]["stems"]
    b = poll(api, second["id"]).json()["result"]["stems"]
    assert {k: v["bytes"] for k, v in a.items()} == {k: v["bytes"] for k, v in b.items()}
    assert a["vocals"]["url"] != b["vocals"]["url"]


def test_test_jobs_cost_no_credits_and_queue_nothing(api, user, clock):
    from dramatiq import get_broker

    before = CreditEntry.objects.count()
    create(api)
    assert CreditEntry.objects.count() == before
    assert all(not q.qsize() for q in get_broker().queues.values())


def test_downloads_honour_range_requests(api, clock):
    job = create(api, "basic")
    clock.shift(timedelta(seconds=2))
    url = poll(api, job["id"]).json()["result"]["stems"]["vocals"]["url"]
    whole = b"".join(api.get(url).streaming_content)
    part = api.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert b"".join(part.streaming_content) == whole[100:200]
    tail = api.get(url, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == whole[-10:]
    assert api.get(url, HTTP_RANGE=f"bytes={len(whole)}-").status_code == 416


def test_a_download_url_with_a_wrong_token_is_404(api, clock):
    job = create(api, "basic")
    clock.shift(timedelta(seconds=2))
    url = poll(api, job["id"]).json()["result"]["stems"]["vocals"]["url"]
    parts = url.split("/")
    parts[-2] = "x" * len(parts[-2])
    response = api.get("/".join(parts))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_hour_after_completion_the_job_and_its_downloads_are_410(api, clock):
    job = create(api)
    clock.shift(timedelta(seconds=2))
    url = poll(api, job["id"]).json()["result"]["stems"]["drums"]["url"]
    clock.shift(timedelta(seconds=3599))
    assert poll(api, job["id"]).status_code == 200
    clock.shift(timedelta(seconds=1))
    gone = poll(api, job["id"])
    assert gone.status_code == 410
    assert gone.json()["error"]["type"] == "invalid_request_error"
    assert api.get(url).status_code == 410
