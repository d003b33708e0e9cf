"""metadata[key]=value on create and on POST /v1/jobs/:id, and the list's filters."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create
from jobs import services
from jobs.models import Job
from tests.conftest import client_for, upload
from tests.services import require_postgres

pytestmark = pytest.mark.django_db
FORM = "application/x-www-form-urlencoded"


def create(api, tier="basic", **fields):
    data = {"file": upload(), "tier": tier, **fields}
    return api.post("/v1/jobs", data, format="multipart")


def created(api, tier="basic", **fields) -> dict:
    response = create(api, tier, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def update(api, job_id: str, body: str | dict, content_type: str = FORM, **headers):
    data = body if isinstance(body, str) else urlencode(body)
    return api.generic("POST", f"/v1/jobs/{job_id}", data, content_type, **headers)


def refused(response, param: str) -> str:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_parameter" and error["param"] == param
    return error["message"]


# Create and show


def test_metadata_set_at_creation_is_stored_and_shown_everywhere(api):
    job = created(api, **{"metadata[order_id]": "6735", "metadata[user]": "ana@example.com"})
    expected = {"order_id": "6735", "user": "ana@example.com"}
    assert job["metadata"] == expected
    assert Job.objects.get(pk=job["id"]).metadata == expected
    assert api.get(f"/v1/jobs/{job['id']}").json()["metadata"] == expected
    assert api.get("/v1/jobs").json()["data"][0]["metadata"] == expected


def test_a_job_without_metadata_shows_an_empty_object(api, live_api):
    assert created(api)["metadata"] == {}
    assert created(live_api)["metadata"] == {}


def test_a_live_job_keeps_its_metadata(live_api):
    job = created(live_api, **{"metadata[batch]": "7"})
    assert live_api.get(f"/v1/jobs/{job['id']}").json()["metadata"] == {"batch": "7"}


def test_twenty_keys_of_forty_characters_and_values_of_500_are_accepted(api):
    metadata = {f"metadata[{i:02d}{'k' * 38}]": "v" * 500 for i in range(20)}
    assert len(created(api, **metadata)["metadata"]) == 20


def test_a_twenty_first_key_is_refused(api):
    metadata = {f"metadata[k{i}]": "v" for i in range(21)}
    assert "at most 20" in refused(create(api, **metadata), "metadata")
    assert not Job.objects.exists()


def test_a_key_over_40_characters_is_refused_naming_it(api):
    key = "k" * 41
    message = refused(create(api, **{f"metadata[{key}]": "v"}), f"metadata[{key[:40]}]")
    assert "40" in message


def test_a_value_over_500_characters_is_refused_naming_its_key(api):
    assert "500" in refused(create(api, **{"metadata[note]": "v" * 501}), "metadata[note]")


def test_an_empty_key_and_a_nul_are_refused(api):
    refused(create(api, **{"metadata[]": "v"}), "metadata[]")
    refused(create(api, **{"metadata[a]": "x\x00y"}), "metadata[a]")


def test_metadata_outside_the_bracket_form_is_refused_on_create(api):
    assert "metadata[key]=value" in refused(create(api, metadata="foo"), "metadata")
    refused(create(api, **{"metadata.x": "1"}), "metadata.x")
    refused(create(api, **{"metadata[a][b]": "1"}), "metadata[a][b]")
    assert not Job.objects.exists()


# Update


def test_update_merges_keys_and_an_empty_value_removes_one(api):
    job = created(api, **{"metadata[a]": "1", "metadata[b]": "2"})
    response = update(api, job["id"], {"metadata[b]": "", "metadata[c]": "3"})
    assert response.status_code == 200, response.content
    assert response.json()["metadata"] == {"a": "1", "c": "3"}
    assert Job.objects.get(pk=job["id"]).metadata == {"a": "1", "c": "3"}
    assert api.get(f"/v1/jobs/{job['id']}").json()["metadata"] == {"a": "1", "c": "3"}


def test_an_empty_metadata_clears_every_key(api):
    job = created(api, **{"metadata[a]": "1", "metadata[b]": "2"})
    assert update(api, job["id"], "metadata=").json()["metadata"] == {}
    both = update(api, job["id"], {"metadata": "", "metadata[c]": "3"}).json()
    assert both["metadata"] == {"c": "3"}


def test_update_takes_multipart_too_and_answers_the_whole_job(api):
    job = created(api)
    response = api.post(f"/v1/jobs/{job['id']}", {"metadata[a]": "1"}, format="multipart")
    assert response.status_code == 200
    assert response.json() | {"metadata": None} == job | {"metadata": None}
    assert response.json()["metadata"] == {"a": "1"}


def test_update_counts_the_limit_after_merging(api):
    job = created(api, **{f"metadata[k{i}]": "v" for i in range(19)})
    assert update(api, job["id"], {"metadata[k0]": "", "metadata[x]": "1"}).status_code == 200
    refused(update(api, job["id"], {"metadata[y]": "1", "metadata[z]": "1"}), "metadata")
    assert len(Job.objects.get(pk=job["id"]).metadata) == 19
    refused(update(api, job["id"], {"metadata[y]": "v" * 501}), "metadata[y]")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tier": "pro"}, "tier"),
        ({"metadata": "foo"}, "metadata"),
        ({"metadata.x": "1"}, "metadata.x"),
        ({"metadata[a]": "1", "metdata[b]": "2"}, "metdata[b]"),
    ],
)
def test_update_refuses_anything_but_metadata(api, body, param):
    job = created(api, **{"metadata[keep]": "1"})
    refused(update(api, job["id"], body), param)
    assert Job.objects.get(pk=job["id"]).metadata == {"keep": "1"}


def test_update_refuses_json(api):
    job = created(api)
    response = update(api, job["id"], '{"metadata": {"a": "1"}}', "application/json")
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["error"]["message"]


def test_update_is_a_404_for_another_account_or_mode(api, user, other_user):
    job = created(api)
    other = client_for(api_key_create(user=other_user, mode="test")[1])
    live = client_for(api_key_create(user=user, mode="live")[1])
    for client in (other, live):
        assert update(client, job["id"], {"metadata[a]": "1"}).status_code == 404
    assert update(api, "job_test_nope", {"metadata[a]": "1"}).status_code == 404
    assert Job.objects.get(pk=job["id"]).metadata == {}


def test_update_of_an_expired_job_is_a_410(api):
    job = created(api)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert update(api, job["id"], {"metadata[a]": "1"}).status_code == 410


def test_update_needs_a_key(db):
    assert update(Client(), "job_test_x", {"metadata[a]": "1"}).status_code == 401


def test_update_replays_with_an_idempotency_key(api):
    job = created(api)
    first = update(api, job["id"], {"metadata[a]": "1"}, HTTP_IDEMPOTENCY_KEY="k1")
    update(api, job["id"], {"metadata[a]": "2"})
    again = update(api, job["id"], {"metadata[a]": "1"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    other = update(api, job["id"], {"metadata[a]": "3"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"


def test_update_has_its_own_rate_limit(api, settings):
    settings.BTRO_RATE_WRITE = "2/m"
    job = created(api)
    answers = [update(api, job["id"], {"metadata[a]": str(i)}) for i in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "changes" in answers[2].json()["error"]["message"]
    assert create(api).status_code == 201  # creations are counted apart


# Filters


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as traveller:
        yield traveller


def ids(api, **query) -> list[str]:
    response = api.get("/v1/jobs", query)
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["data"]]


def test_the_list_filters_by_tier(api, clock):
    basic = created(api, "basic")["id"]
    clock.shift(1)
    pro = created(api, "pro")["id"]
    assert ids(api, tier="basic") == [basic]
    assert ids(api, tier="pro") == [pro]


def test_the_status_filter_matches_what_a_test_job_shows_at_the_2_s_boundary(api, clock):
    job = created(api)["id"]
    assert ids(api, status="queued") == [job] and ids(api, status="succeeded") == []
    clock.shift(timedelta(seconds=2) - timedelta(microseconds=1))
    assert ids(api, status="queued") == [job]
    assert api.get("/v1/jobs").json()["data"][0]["status"] == "queued"
    clock.shift(timedelta(microseconds=1))
    assert ids(api, status="queued") == [] and ids(api, status="succeeded") == [job]
    assert api.get("/v1/jobs").json()["data"][0]["status"] == "succeeded"
    assert ids(api, status="failed") == []


def test_the_status_filter_finds_live_jobs_as_stored(live_api, user, clock):
    queued = created(live_api)["id"]
    clock.shift(1)
    failed = created(live_api)["id"]
    Job.objects.filter(pk=failed).update(
        status="failed", completed_at=timezone.now(), error_type="engine_error"
    )
    assert ids(live_api, status="queued") == [queued]
    assert ids(live_api, status="failed") == [failed]


def test_created_bounds_are_inclusive_unix_seconds(api, clock):
    clock.shift(timedelta(milliseconds=700))  # `created` shows the whole second
    first = created(api)
    clock.shift(10)
    second = created(api)
    t1, t2 = first["created"], second["created"]
    assert ids(api, **{"created[gte]": t1}) == [second["id"], first["id"]]
    assert ids(api, **{"created[gte]": t1 + 1}) == [second["id"]]
    assert ids(api, **{"created[lte]": t1}) == [first["id"]]
    assert ids(api, **{"created[lte]": t2 - 1}) == [first["id"]]
    assert ids(api, **{"created[gte]": t2, "created[lte]": t2}) == [second["id"]]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "done"),
        ("tier", "ultra"),
        ("created[gte]", "yesterday"),
        ("created[lte]", "-1"),
        ("created[gte]", "99999999999999999999"),
    ],
)
def test_an_invalid_filter_is_a_400_naming_it(api, param, value):
    refused(api.get("/v1/jobs", {param: value}), param)


def test_filters_combine_with_the_cursors(api, clock):
    made = []
    for i in range(6):
        made.append(created(api, "pro" if i % 2 else "basic"))
        clock.shift(1)
    pros = [job["id"] for job in reversed(made) if job["tier"] == "pro"]  # newest first
    since = {"created[gte]": made[1]["created"]}
    page = api.get("/v1/jobs", {"tier": "pro", "limit": 2, **since}).json()
    assert [job["id"] for job in page["data"]] == pros[:2] and page["has_more"] is True
    rest = api.get("/v1/jobs", {"tier": "pro", "limit": 2, "starting_after": pros[1], **since})
    assert [job["id"] for job in rest.json()["data"]] == pros[2:]
    assert rest.json()["has_more"] is False
    back = api.get("/v1/jobs", {"tier": "pro", "ending_before": pros[2], **since}).json()
    assert [job["id"] for job in back["data"]] == pros[:2]
    # a cursor that does not match the filter still marks a place in the list
    basic_between = made[2]["id"]
    after = ids(api, tier="pro", starting_after=basic_between)
    assert after == [made[1]["id"]]


# Dashboard


def test_the_dashboard_job_page_shows_the_metadata(client, user, test_key):
    client.force_login(user)
    job = created(client_for(test_key), **{"metadata[order_id]": "A-6735"})
    page = client.get(f"/jobs/{job['id']}/").content.decode()
    assert "order_id" in page and "A-6735" in page


def test_the_dashboard_list_filters_by_metadata_key_and_value(client, user, test_key, clock):
    client.force_login(user)
    api = client_for(test_key)
    tagged = created(api, **{"metadata[batch]": "b7"})["id"]
    clock.shift(1)
    other_value = created(api, **{"metadata[batch]": "b8"})["id"]
    clock.shift(1)
    untagged = created(api)["id"]
    page = client.get("/jobs/", {"key": "batch", "value": "b7"}).content.decode()
    assert tagged in page and other_value not in page and untagged not in page
    page = client.get("/jobs/", {"key": "batch"}).content.decode()
    assert tagged in page and other_value in page and untagged not in page
    page = client.get("/jobs/", {"key": "batch", "status": "queued"}).content.decode()
    assert other_value in page and tagged not in page  # 2 s old: succeeded


def test_a_metadata_key_holding_double_underscores_is_a_key_not_a_path(client, user, test_key):
    client.force_login(user)
    job = created(client_for(test_key), **{"metadata[a__b]": "1"})["id"]
    assert job in client.get("/jobs/", {"key": "a__b", "value": "1"}).content.decode()
    assert job not in client.get("/jobs/", {"key": "a", "value": "1"}).content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_update_waits_for_another_on_the_same_job_and_keeps_its_keys(api):
    require_postgres()  # SQLite locks the whole database, not the row
    job = created(api)
    done = threading.Event()

    def second_update() -> None:
        try:
            services.job_metadata_update(job=Job.objects.get(pk=job["id"]), changes={"b": "2"})
        finally:
            connection.close()
            done.set()

    with transaction.atomic():  # a first update, holding the row
        Job.objects.select_for_update().get(pk=job["id"])
        thread = threading.Thread(target=second_update)
        thread.start()
        assert not done.wait(0.5)  # the second waits for the row …
        Job.objects.filter(pk=job["id"]).update(metadata={"a": "1"})
    thread.join(10)
    assert done.is_set()
    assert Job.objects.get(pk=job["id"]).metadata == {"a": "1", "b": "2"}  # … then merges
