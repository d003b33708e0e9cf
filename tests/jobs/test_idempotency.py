import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from btro.errors import IdempotencyInProgress
from jobs.idempotency import idempotency_begin, idempotency_fingerprint, idempotent
from jobs.models import IdempotencyRecord, Job
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


def failing(exc: BaseException):
    def job_create(**kwargs):
        raise exc

    return job_create


def test_a_retry_after_a_server_error_runs_again_and_succeeds(api, monkeypatch):
    from jobs import services

    monkeypatch.setattr(services, "job_create", failing(RuntimeError("disk on fire")))
    api.raise_request_exception = False  # got_request_exception fired: see the 500 anyway
    first = post(api, "k4")
    monkeypatch.undo()
    again = post(api, "k4")
    assert first.status_code == 500
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    "answer",
    [
        Throttled(wait=3),
        IdempotencyInProgress("Another request holds this job."),
    ],
    ids=["429", "409"],
)
def test_a_conflict_or_rate_limit_answer_is_not_stored(api, monkeypatch, answer):
    from jobs import services

    monkeypatch.setattr(services, "job_create", failing(answer))
    first = post(api, "k7")
    monkeypatch.undo()
    again = post(api, "k7")
    assert first.status_code in (409, 429)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again


class Crash(BaseException):
    """Not an Exception: what a killed thread or an interrupted request raises."""


def test_a_request_that_crashes_releases_its_key(api, monkeypatch):
    from jobs import services

    monkeypatch.setattr(services, "job_create", failing(Crash()))
    with pytest.raises(Crash):
        post(api, "k8")
    monkeypatch.undo()
    assert not IdempotencyRecord.objects.exists()
    assert post(api, "k8").status_code == 201


def test_a_retry_while_the_first_is_still_running_is_409(api, user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    same_request = idempotency_fingerprint(
        method="POST",
        path="/v1/jobs",
        params={"tier": ["pro"]},
        files={"file": [SimpleUploadedFile("track.wav", wav_bytes())]},
    )
    key = user.api_keys.filter(mode="test").first()
    record = idempotency_begin(api_key=key, key="k5", fingerprint=same_request)  # running
    assert isinstance(record, IdempotencyRecord)
    response = post(api, "k5")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "idempotency_error"
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        response_status=201, response_body={"id": "job_first"}
    )
    assert post(api, "k5").json() == {"id": "job_first"}  # the first's answer, not the 409


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


class Cancels(viewsets.ViewSet):
    """A POST action other than create, as the cancel and webhook endpoints will be."""

    runs: list[str] = []

    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk):
        self.runs.append(pk)
        return Response({"id": pk, "reason": request.data.get("reason"), "runs": len(self.runs)})


def cancel(secret, job_id, key, **data):
    request = APIRequestFactory().post(
        f"/v1/jobs/{job_id}/cancel",
        data,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    return Cancels.as_view({"post": "cancel"})(request, pk=job_id)


def test_any_post_action_replays_its_first_answer_to_a_retry(test_key, monkeypatch):
    monkeypatch.setattr(Cancels, "runs", [])
    first = cancel(test_key, "job_a", "c1", reason="duplicate")
    again = cancel(test_key, "job_a", "c1", reason="duplicate")
    assert again.data == first.data == {"id": "job_a", "reason": "duplicate", "runs": 1}
    assert again["Idempotent-Replayed"] == "true"
    assert Cancels.runs == ["job_a"]


def test_any_post_action_refuses_a_key_reused_with_other_parameters_or_on_another_path(
    test_key, monkeypatch
):
    monkeypatch.setattr(Cancels, "runs", [])
    cancel(test_key, "job_a", "c2", reason="duplicate")
    for job_id, reason in (("job_a", "fraudulent"), ("job_b", "duplicate")):
        response = cancel(test_key, job_id, "c2", reason=reason)
        assert response.status_code == 400
        assert json.loads(response.content)["error"]["type"] == "idempotency_error"
    assert Cancels.runs == ["job_a"]


def test_the_create_endpoint_documents_the_idempotency_key_header(client):
    create = client.get("/v1/openapi.json").json()["paths"]["/v1/jobs"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"] if p["in"] == "header"]


@pytest.mark.parametrize("key", ["tab\there", "bell\x07", "del\x7f", "caf\u00e9"])
def test_a_key_with_control_characters_is_refused_and_nothing_is_created(api, key):
    response = post(api, key)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert not Job.objects.exists() and not IdempotencyRecord.objects.exists()
