from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tests.conftest import upload

pytestmark = pytest.mark.django_db


def envelope(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["request_id"] == response["Request-Id"]
    return error


def test_an_unknown_api_path_is_404_in_the_envelope():
    error = envelope(Client().get("/v1/nothing-here"), 404)
    assert error["type"] == "invalid_request_error"


def test_a_wrong_method_is_405_in_the_envelope(api):
    envelope(api.delete("/v1/jobs"), 405)


def test_an_unexpected_server_error_is_500_api_error(api, monkeypatch):
    from jobs import selectors

    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "job_list", boom)
    api.raise_request_exception = False  # got_request_exception fired: see the 500 anyway
    error = envelope(api.get("/v1/jobs"), 500)
    assert error["type"] == "api_error"
    assert "fire" not in error["message"]


def test_django_raises_413_for_an_oversized_non_file_body(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post("/v1/jobs", {"tier": "x" * 1000}, format="multipart")
    assert envelope(response, 413)["type"] == "invalid_request_error"


def test_every_response_carries_a_request_id(api):
    assert api.get("/v1/jobs")["Request-Id"].startswith("req_")
    assert Client().get("/")["Request-Id"].startswith("req_")


def test_polling_one_job_quickly_meets_a_429_with_retry_after(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    with time_machine.travel(timezone.now(), tick=False):
        statuses = [api.get(f"/v1/jobs/{job['id']}").status_code for _ in range(8)]
        assert statuses.count(200) >= 3 and 429 in statuses
        limited = api.get(f"/v1/jobs/{job['id']}")
        error = envelope(limited, 429)
        assert error["type"] == "rate_limit_exceeded"
        assert 1 <= int(limited["Retry-After"]) <= 6


def test_polling_about_every_2_seconds_is_never_limited_even_with_jitter(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(20):
            assert api.get(f"/v1/jobs/{job['id']}").status_code in (200, 410)
            clock.shift(timedelta(seconds=1.9))  # a little early, as real clients are


def test_creating_jobs_has_its_own_per_key_limit(api, settings):
    settings.BTRO_RATE_CREATE = "2/m"
    codes = [
        api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
