"""The API against its own OpenAPI document: schemathesis drives /v1 in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
import time_machine
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from btro.wsgi import application
from tests.conftest import wav_bytes

schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application)
# Case(body=...) of a multipart upload is a dict that holds the file as bytes, as schemathesis
# sends it; its Body type (JSON, or bytes alone) leaves that out: type: ignore[dict-item] below.


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: a request's end must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def secret(test_key) -> str:
    return test_key


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_to_a_valid_key_conforms_to_the_document(case, secret):
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_to_a_generated_key_conforms_to_the_document(case, db):
    case.call_and_validate(checks=CHECKS)


def test_a_real_job_conforms_when_created_queued_listed_and_finished(secret):
    auth = {"Authorization": f"Bearer {secret}"}
    create = schema["/v1/jobs"]["POST"].Case(
        body={"file": wav_bytes(0.5), "tier": "studio", "format": "flac"},  # type: ignore[dict-item]  # see `schema`
        media_type="multipart/form-data",
    )
    with time_machine.travel(timezone.now(), tick=False) as clock:
        response = create.call_and_validate(headers=auth, checks=CHECKS)
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        retrieve = schema["/v1/jobs/{id}"]["GET"].Case(path_parameters={"id": job_id})
        assert retrieve.call_and_validate(headers=auth, checks=CHECKS).json()["status"] == "queued"
        clock.shift(timedelta(seconds=3))
        done = retrieve.call_and_validate(headers=auth, checks=CHECKS).json()
        assert done["status"] == "succeeded" and len(done["result"]["stems"]) == 6
        listing = schema["/v1/jobs"]["GET"].Case(query={"limit": 1})
        page = listing.call_and_validate(headers=auth, checks=CHECKS).json()
        assert [job["id"] for job in page["data"]] == [job_id]
        for _ in range(5):  # the poll limit: a 429 with Retry-After, as documented
            last = retrieve.call_and_validate(headers=auth, checks=CHECKS)
        assert last.status_code == 429


def test_a_real_job_conforms_when_canceled_canceled_again_ended_and_deleted(secret):
    auth = {"Authorization": f"Bearer {secret}"}
    create = schema["/v1/jobs"]["POST"].Case(
        body={"file": wav_bytes(0.5), "tier": "basic"},  # type: ignore[dict-item]  # see `schema`
        media_type="multipart/form-data",
    )
    with time_machine.travel(timezone.now(), tick=False) as clock:
        canceled, ended = (create.call(headers=auth).json()["id"] for _ in range(2))
        cancel = schema["/v1/jobs/{id}/cancel"]["POST"]
        for _ in range(2):  # a canceled job answers itself again
            response = cancel.Case(path_parameters={"id": canceled}).call_and_validate(
                headers=auth, checks=CHECKS
            )
            assert response.json()["error"]["type"] == "canceled"
        clock.shift(timedelta(seconds=3))
        refused = cancel.Case(path_parameters={"id": ended}).call_and_validate(
            headers=auth, checks=CHECKS
        )
        assert refused.status_code == 400
        delete = schema["/v1/jobs/{id}"]["DELETE"].Case(path_parameters={"id": ended})
        assert delete.call_and_validate(headers=auth, checks=CHECKS).json()["deleted"] is True
        assert delete.call_and_validate(headers=auth, checks=CHECKS).status_code == 410


def test_the_document_names_the_server_it_came_from_and_the_download_route(client, settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    document = client.get("/v1/openapi.json", HTTP_HOST="api.example.com").json()
    assert document["servers"][0]["url"] == "http://api.example.com"
    download = document["paths"]["/v1/files/{job_id}/{token}/{filename}"]["get"]
    assert download["security"] == [] and {"200", "206", "404", "410", "416"} <= set(
        download["responses"]
    )


def test_the_idempotency_key_header_has_the_limits_the_server_enforces(client):
    document = client.get("/v1/openapi.json").json()
    header = next(
        p for p in document["paths"]["/v1/jobs"]["post"]["parameters"] if p["in"] == "header"
    )
    assert header["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[ -~]+$",
    }


def test_metadata_set_on_create_and_changed_by_update_conforms(secret):
    auth = {"Authorization": f"Bearer {secret}"}
    create = schema["/v1/jobs"]["POST"].Case(
        body={"file": wav_bytes(0.5), "tier": "basic", "metadata[order]": "6735"},  # type: ignore[dict-item]  # see `schema`
        media_type="multipart/form-data",
    )
    response = create.call_and_validate(headers=auth, checks=CHECKS)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"order": "6735"}
    update = schema["/v1/jobs/{id}"]["POST"].Case(
        path_parameters={"id": response.json()["id"]},
        body={"metadata[order]": "", "metadata[batch]": "b7"},
        media_type="application/x-www-form-urlencoded",
    )
    changed = update.call_and_validate(headers=auth, checks=CHECKS)
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"] == {"batch": "b7"}
    listing = schema["/v1/jobs"]["GET"].Case(query={"status": "queued", "created[gte]": 0})
    page = listing.call_and_validate(headers=auth, checks=CHECKS).json()
    assert [job["metadata"] for job in page["data"]] == [{"batch": "b7"}]


def test_generated_clients_see_every_object_named_and_no_builtin_shadowed(client):
    schemas = client.get("/v1/openapi.json").json()["components"]["schemas"]
    for name in ("Job", "JobList", "Balance", "Usage", "Event", "WebhookEndpoint"):
        assert "object" in schemas[name]["required"], name
    assert "Error" not in schemas  # TypeScript's built-in Error; ours are JobError, ErrorResponse


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/events", "/v1/webhook_endpoints"])
@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_an_empty_cursor_is_refused_as_the_document_says(api, path, cursor):
    response = api.get(f"{path}?{cursor}=")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == cursor
