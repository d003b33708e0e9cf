from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs.idempotency import idempotency_begin, idempotency_fingerprint
from jobs.models import Job
from tests.conftest import client_for, upload, wav_bytes

pytestmark = pytest.mark.django_db


def post(api, key, tier="pro", data=None, **headers):
    body = {"file": upload(data=data or wav_bytes()), "tier": tier}
    return api.post("/v1/jobs", body, format="multipart", HTTP_IDEMPOTENCY_KEY=key, **headers)


def test_a_retry_with_the_same_key_replays_the_first_response_and_creates_nothing(api):
    first = post(api, "order-42")
    again = post(api, "order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1


def test_the_same_key_with_other_parameters_is_an_idempotency_error(api):
    post(api, "k1", tier="pro")
    response = post(api, "k1", tier="studio")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_the_same_key_with_another_file_is_an_idempotency_error(api):
    post(api, "k2", data=wav_bytes(1.0))
    response = post(api, "k2", data=wav_bytes(1.5))
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_an_error_response_is_stored_and_replayed_too(api):
    first = post(api, "k3", tier="nope")
    again = post(api, "k3", tier="nope")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


def test_a_500_is_stored_and_replayed(api, monkeypatch):
    from jobs import services

    def boom(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "job_create", boom)
    api.raise_request_exception = False  # got_request_exception fired: see the 500 anyway
    first = post(api, "k4")
    monkeypatch.undo()
    again = post(api, "k4")
    assert first.status_code == again.status_code == 500
    assert again.json() == first.json()
    assert not Job.objects.exists()


def test_a_retry_while_the_first_is_still_running_is_409(api, user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    same_request = idempotency_fingerprint(
        params={"tier": "pro", "type": None, "format": None},
        upload=SimpleUploadedFile("track.wav", wav_bytes()),
    )
    key = user.api_keys.filter(mode="test").first()
    idempotency_begin(api_key=key, key="k5", fingerprint=same_request)  # still running
    response = post(api, "k5")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "idempotency_error"


def test_keys_are_scoped_to_account_and_mode(api, user, other_user):
    from accounts.services import api_key_create

    post(api, "shared")
    live = client_for(api_key_create(user=user, mode="live")[1])
    other = client_for(api_key_create(user=other_user, mode="test")[1])
    assert post(live, "shared").json()["livemode"] is True
    response = post(other, "shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Job.objects.count() == 3


def test_a_key_is_forgotten_after_24_hours(api):
    first = post(api, "k6").json()
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        second = post(api, "k6").json()
    assert second["id"] != first["id"]
