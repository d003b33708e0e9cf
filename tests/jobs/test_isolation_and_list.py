from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services import api_key_create
from tests.conftest import client_for, upload

pytestmark = pytest.mark.django_db


def create(api, tier="basic"):
    return api.post("/v1/jobs", {"file": upload(), "tier": tier}, format="multipart").json()


def test_another_accounts_job_is_the_same_404_as_a_job_that_never_existed(api, other_user):
    job = create(api)
    other = client_for(api_key_create(user=other_user, mode="test")[1])
    theirs = other.get(f"/v1/jobs/{job['id']}").json()["error"]
    missing = other.get("/v1/jobs/job_test_doesnotexist").json()["error"]
    theirs.pop("request_id"), missing.pop("request_id")
    assert theirs["message"].replace(job["id"], "X") == missing["message"].replace(
        "job_test_doesnotexist", "X"
    )
    assert theirs["type"] == missing["type"] == "invalid_request_error"


def test_a_test_job_is_404_to_the_same_accounts_live_key(api, user):
    job = create(api)
    live = client_for(api_key_create(user=user, mode="live")[1])
    assert live.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_the_list_is_newest_first_with_cursors_both_ways(api):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ids = []
        for _ in range(5):
            ids.append(create(api)["id"])
            clock.shift(timedelta(seconds=1))
    newest_first = list(reversed(ids))
    page = api.get("/v1/jobs", {"limit": 2}).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [j["id"] for j in page["data"]] == newest_first[:2]
    page2 = api.get("/v1/jobs", {"limit": 2, "starting_after": newest_first[1]}).json()
    assert [j["id"] for j in page2["data"]] == newest_first[2:4]
    last = api.get("/v1/jobs", {"limit": 2, "starting_after": newest_first[3]}).json()
    assert [j["id"] for j in last["data"]] == newest_first[4:] and last["has_more"] is False
    back = api.get("/v1/jobs", {"limit": 2, "ending_before": newest_first[2]}).json()
    assert [j["id"] for j in back["data"]] == newest_first[:2]


@pytest.mark.parametrize("limit", [0, 101, "ten"])
def test_a_limit_outside_1_to_100_is_invalid(api, limit):
    response = api.get("/v1/jobs", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


def test_the_list_shows_only_the_callers_mode_and_account(api, user, other_user):
    create(api)
    live = client_for(api_key_create(user=user, mode="live")[1])
    other = client_for(api_key_create(user=other_user, mode="test")[1])
    assert live.get("/v1/jobs").json()["data"] == []
    assert other.get("/v1/jobs").json()["data"] == []
    assert len(api.get("/v1/jobs").json()["data"]) == 1


def test_an_unknown_cursor_is_invalid_parameter(api):
    response = api.get("/v1/jobs", {"starting_after": "job_test_nope"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "starting_after"


def test_a_format_query_parameter_does_not_switch_the_list_away_from_json(api):
    response = api.get("/v1/jobs?format=xyz")  # no renderer switch: an unknown parameter
    assert response.status_code == 400 and response.json()["error"]["param"] == "format"
