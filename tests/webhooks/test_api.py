"""/v1/webhook_endpoints, /v1/events and a job's `webhook`: the envelope, cursors and isolation
rules of /v1/jobs, the secret shown once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services import api_key_create
from tests.conftest import client_for, upload
from tests.webhooks.receiver import verify
from webhooks.models import Delivery, Event
from webhooks.services import delivery_attempt

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/btro"


def endpoint(client, url=URL, **extra) -> dict:
    data = {"url": url, "enabled_events[]": ["job.succeeded", "job.failed"], **extra}
    response = client.post("/v1/webhook_endpoints", data)
    assert response.status_code == 201, response.content
    return response.json()


def create_test_job(client, **extra) -> dict:
    data = {"file": upload(), "tier": "basic", **extra}
    response = client.post("/v1/jobs", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def other_api(other_user):
    return client_for(api_key_create(user=other_user, mode="test", name="o")[1])


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_an_endpoint_is_created_from_a_form_and_its_secret_is_shown_once(api):
    created = endpoint(api, description="Production")
    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["enabled_events"] == ["job.succeeded", "job.failed"]
    assert created["status"] == "enabled" and created["livemode"] is False
    assert created["description"] == "Production"
    shown = api.get(f"/v1/webhook_endpoints/{created['id']}").json()
    assert "secret" not in shown and shown == {k: v for k, v in created.items() if k != "secret"}
    listed = api.get("/v1/webhook_endpoints").json()
    assert listed["object"] == "list" and listed["url"] == "/v1/webhook_endpoints"
    assert "secret" not in listed["data"][0]
    rolled = api.post(f"/v1/webhook_endpoints/{created['id']}/roll_secret")
    assert rolled.status_code == 200
    assert rolled.json()["secret"].startswith("whsec_")
    assert rolled.json()["secret"] != created["secret"]


EVENTS = ["job.succeeded", "job.failed"]


@pytest.mark.parametrize(
    "body, format",
    [
        ({"url": URL, "enabled_events": EVENTS}, "multipart"),  # repeated fields
        ({"url": URL, "enabled_events[]": EVENTS}, "multipart"),  # Stripe's brackets
        ("url=" + URL + "&enabled_events[]=job.succeeded&enabled_events[]=job.failed", "form"),
    ],
)
def test_enabled_events_come_as_repeated_or_bracketed_form_fields_or_json(api, body, format):
    if format == "form":
        response = api.post(
            "/v1/webhook_endpoints", body, content_type="application/x-www-form-urlencoded"
        )
    else:
        response = api.post("/v1/webhook_endpoints", body, format=format)
    assert response.status_code == 201, response.content
    assert response.json()["enabled_events"] == EVENTS


@pytest.mark.parametrize(
    "body, param",
    [
        ({"url": URL}, "enabled_events"),
        ({"url": URL, "enabled_events": ["job.created"]}, "enabled_events"),
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "ftp://example.com/", "enabled_events": ["*"]}, "url"),
        ({"url": URL, "enabled_events": ["*"], "description": "d" * 501}, "description"),
    ],
)
def test_a_bad_create_is_a_400_naming_the_parameter(api, body, param):
    response = api.post("/v1/webhook_endpoints", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_parameter" and error["param"] == param
    assert error["request_id"] and error["message"]


def test_an_endpoint_is_updated_and_deleted(api):
    created = endpoint(api)
    response = api.post(
        f"/v1/webhook_endpoints/{created['id']}",
        {"url": URL + "/v2", "enabled_events": ["job.failed"], "disabled": "true"},
    )
    assert response.status_code == 200, response.content
    updated = response.json()
    assert updated["url"] == URL + "/v2" and updated["enabled_events"] == ["job.failed"]
    assert updated["status"] == "disabled" and "secret" not in updated
    response = api.delete(f"/v1/webhook_endpoints/{created['id']}")
    assert response.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert api.get(f"/v1/webhook_endpoints/{created['id']}").status_code == 404


def test_another_accounts_or_modes_endpoint_is_a_404(api, live_api, other_api):
    mine = endpoint(api)["id"]
    for client in (live_api, other_api):
        for response in (
            client.get(f"/v1/webhook_endpoints/{mine}"),
            client.post(f"/v1/webhook_endpoints/{mine}", {"disabled": "true"}),
            client.post(f"/v1/webhook_endpoints/{mine}/roll_secret"),
            client.delete(f"/v1/webhook_endpoints/{mine}"),
        ):
            assert response.status_code == 404, response.content
            assert response.json()["error"]["type"] == "invalid_request_error"
        assert client.get("/v1/webhook_endpoints").json()["data"] == []
    assert api.get(f"/v1/webhook_endpoints/{mine}").json()["status"] == "enabled"


def test_endpoints_page_with_cursors_newest_first(api, clock):
    ids = []
    for _ in range(5):
        ids.append(endpoint(api)["id"])
        clock.shift(timedelta(seconds=1))
    newest = ids[::-1]
    page = api.get("/v1/webhook_endpoints", {"limit": 2}).json()
    assert [e["id"] for e in page["data"]] == newest[:2] and page["has_more"]
    page = api.get("/v1/webhook_endpoints", {"limit": 2, "starting_after": newest[1]}).json()
    assert [e["id"] for e in page["data"]] == newest[2:4] and page["has_more"]
    page = api.get("/v1/webhook_endpoints", {"limit": 2, "ending_before": newest[2]}).json()
    assert [e["id"] for e in page["data"]] == newest[:2]
    response = api.get("/v1/webhook_endpoints", {"starting_after": "we_nope"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "starting_after"


def test_events_list_newest_first_with_cursors_and_a_type_filter(api, clock, settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    jobs = []
    for _ in range(3):
        jobs.append(create_test_job(api)["id"])
        clock.shift(timedelta(seconds=1))
    events = Event.objects.order_by("-created")
    failed = events[1]
    Event.objects.filter(pk=failed.pk).update(type="job.failed")
    listed = api.get("/v1/events").json()
    assert listed["object"] == "list" and listed["url"] == "/v1/events"
    assert [e["data"]["object"]["id"] for e in listed["data"]] == jobs[::-1]
    page = api.get("/v1/events", {"limit": 1, "starting_after": listed["data"][0]["id"]}).json()
    assert [e["id"] for e in page["data"]] == [failed.id] and page["has_more"]
    only = api.get("/v1/events", {"type": "job.failed"}).json()["data"]
    assert [e["id"] for e in only] == [failed.id]
    assert api.get("/v1/events", {"type": "job.created"}).status_code == 400
    one = api.get(f"/v1/events/{failed.id}").json()
    assert one["object"] == "event" and one["type"] == "job.failed"


def test_events_are_listed_for_30_days(api, clock, settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    create_test_job(api)
    event_id = Event.objects.get().id
    clock.shift(timedelta(days=29, hours=23))
    assert api.get(f"/v1/events/{event_id}").status_code == 200
    clock.shift(timedelta(hours=2))
    assert api.get(f"/v1/events/{event_id}").status_code == 404
    assert api.get("/v1/events").json()["data"] == []


def test_another_accounts_or_modes_event_is_a_404(api, live_api, other_api, settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    create_test_job(api)
    event_id = Event.objects.get().id
    assert api.get(f"/v1/events/{event_id}").status_code == 200
    for client in (live_api, other_api):
        response = client.get(f"/v1/events/{event_id}")
        assert response.status_code == 404 and response.json()["error"]["param"] == "id"
        assert client.get("/v1/events").json()["data"] == []


def test_a_test_jobs_event_is_not_shown_before_the_job_completes(api, clock):
    create_test_job(api)
    event_id = Event.objects.get().id
    assert api.get("/v1/events").json()["data"] == []
    assert api.get(f"/v1/events/{event_id}").status_code == 404
    clock.shift(timedelta(seconds=2))
    assert api.get(f"/v1/events/{event_id}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_jobs_own_webhook_gets_that_jobs_event_signed_with_the_mode_secret(
    api, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    job = create_test_job(api, webhook=receiver.url)
    create_test_job(api)  # another job: not sent there
    assert api.get("/v1/webhook_endpoints").json()["data"] == []  # not a listed endpoint
    [delivery] = Delivery.objects.all()
    delivery_attempt(delivery_id=delivery.pk)
    secret = api.get("/v1/webhook_secret").json()["secret"]
    assert secret.startswith("whsec_")
    event = verify(receiver.wait_for(1)[0], secret)
    assert event["data"]["object"]["id"] == job["id"]


def test_a_post_with_an_idempotency_key_is_replayed(api):
    body = {"url": URL, "enabled_events": ["*"]}
    first = api.post("/v1/webhook_endpoints", body, HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/v1/webhook_endpoints", body, HTTP_IDEMPOTENCY_KEY="k1")
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/v1/webhook_endpoints").json()["data"]) == 1


def test_the_routes_need_a_key(client):
    for path in ("/v1/webhook_endpoints", "/v1/events", "/v1/webhook_secret"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_the_list_routes_refuse_the_job_lists_filters_and_unknown_parameters(api):
    for path in ("/v1/webhook_endpoints", "/v1/events"):
        for name in ("created[gte]", "tier", "color"):
            response = api.get(path, {name: "1"})
            assert response.status_code == 400, (path, name, response.content)
            assert response.json()["error"]["param"] == name
    response = api.post("/v1/webhook_endpoints", {"url": URL, "enabled_events": ["*"], "x": "1"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "x"
