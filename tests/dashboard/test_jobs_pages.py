import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services import api_key_create
from jobs.models import Job
from tests.conftest import client_for, upload

pytestmark = pytest.mark.django_db


def create(secret, tier="pro", name="track.wav"):
    response = client_for(secret).post(
        "/v1/jobs", {"file": upload(name), "tier": tier}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def listed(client, query="") -> str:
    return client.get(f"/jobs/{query}").content.decode()


def test_the_jobs_list_shows_the_accounts_jobs_newest_first(browser_client, test_key, clock):
    first = create(test_key, name="first.wav")
    clock.shift(timedelta(seconds=5))
    second = create(test_key, name="second.wav")
    page = listed(browser_client)
    assert page.index(second) < page.index(first)


def test_the_jobs_list_filters_by_mode(browser_client, user, test_key):
    _, live_secret = api_key_create(user=user, mode="live")
    test_job = create(test_key)
    Job.objects.create(
        id="job_live_1",
        user=user,
        livemode=True,
        tier="basic",
        filename="l.wav",
        download_token="x",
    )
    assert test_job in listed(browser_client, "?mode=test")
    assert "job_live_1" not in listed(browser_client, "?mode=test")
    assert "job_live_1" in listed(browser_client, "?mode=live")
    assert test_job not in listed(browser_client, "?mode=live")


def test_the_jobs_list_filters_by_tier(browser_client, test_key):
    pro, basic = create(test_key, tier="pro"), create(test_key, tier="basic")
    page = listed(browser_client, "?tier=basic")
    assert basic in page and pro not in page


def test_the_status_filter_follows_what_the_api_shows_now(browser_client, test_key, clock):
    job = create(test_key)
    assert job in listed(browser_client, "?status=queued")
    assert job not in listed(browser_client, "?status=succeeded")
    clock.shift(timedelta(seconds=2))
    assert job not in listed(browser_client, "?status=queued")
    assert job in listed(browser_client, "?status=succeeded")


def test_the_jobs_list_is_paginated(browser_client, test_key):
    ids = [create(test_key) for _ in range(21)]
    first_page, second_page = listed(browser_client), listed(browser_client, "?page=2")
    assert "Page 1 of 2" in first_page
    assert ids[0] not in first_page and ids[0] in second_page


def test_another_users_job_is_a_404(browser_client, other_user):
    _, secret = api_key_create(user=other_user, mode="test")
    job = create(secret)
    assert job not in listed(browser_client)
    assert browser_client.get(f"/jobs/{job}/").status_code == 404
    assert browser_client.get(f"/jobs/{job}/poll/").status_code == 404


def test_the_job_page_shows_the_job_as_the_api_returns_it(browser_client, test_key, clock):
    job = create(test_key)
    clock.shift(timedelta(seconds=3))
    api_body = client_for(test_key).get(f"/v1/jobs/{job}").json()
    page = browser_client.get(f"/jobs/{job}/")
    assert json.loads(page.context["job_json"]) == api_body


def test_a_running_job_page_polls_and_shows_progress(browser_client, test_key):
    job = create(test_key)
    page = browser_client.get(f"/jobs/{job}/").content.decode()
    assert 'data-status="queued"' in page and "<progress" in page
    poll = browser_client.get(f"/jobs/{job}/poll/").json()
    assert (poll["id"], poll["status"], poll["progress"]) == (job, "queued", 0)


def test_a_succeeded_job_page_has_a_player_and_a_download_per_stem(browser_client, test_key, clock):
    job = create(test_key, tier="pro")
    clock.shift(timedelta(seconds=2))
    response = browser_client.get(f"/jobs/{job}/")
    page = response.content.decode()
    stems = [stem["name"] for stem in response.context["stems"]]
    assert stems == ["vocals", "drums", "bass", "other"]
    assert page.count("<audio") == 4 and page.count("<canvas") == 4
    assert page.count("Download</a>") == 4
    assert "data-expires=" in page
    url = response.context["stems"][0]["url"]
    assert browser_client.get(url).status_code == 200


def test_an_expired_job_says_so_and_offers_no_players(browser_client, test_key, clock):
    job = create(test_key)
    clock.shift(timedelta(hours=2))
    page = browser_client.get(f"/jobs/{job}/").content.decode()
    assert "expired" in page and "<audio" not in page
    assert "Expired" in listed(browser_client)


def test_a_queued_job_is_canceled_from_its_page_through_a_confirmation_form(user, test_key, clock):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    job_id = create(test_key)
    page = browser.get(f"/jobs/{job_id}/").content.decode()
    assert f'href="/jobs/{job_id}/cancel/"' in page and f'href="/jobs/{job_id}/delete/"' in page
    confirm = browser.get(f"/jobs/{job_id}/cancel/")
    assert (
        "Cancel this job?" in confirm.content.decode()
        and "<script>" not in confirm.content.decode()
    )
    assert browser.post(f"/jobs/{job_id}/cancel/").status_code == 403  # no CSRF token
    token = confirm.cookies["csrftoken"].value
    response = browser.post(f"/jobs/{job_id}/cancel/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job_id}/"
    page = browser.get(f"/jobs/{job_id}/").content.decode()
    assert "canceled" in page and f'href="/jobs/{job_id}/cancel/"' not in page
    assert client_for(test_key).get(f"/v1/jobs/{job_id}").json()["error"]["type"] == "canceled"


def test_a_finished_job_has_no_cancel_button_and_cancel_says_it_ended(
    browser_client, test_key, clock
):
    job_id = create(test_key)
    clock.shift(timedelta(seconds=3))
    page = browser_client.get(f"/jobs/{job_id}/").content.decode()
    assert f'href="/jobs/{job_id}/cancel/"' not in page and f"/jobs/{job_id}/delete/" in page
    response = browser_client.post(f"/jobs/{job_id}/cancel/", follow=True)
    assert "already ended" in response.content.decode()


def test_a_job_is_deleted_from_its_page_and_leaves_the_list(browser_client, test_key):
    job_id = create(test_key)
    assert "Delete this job?" in browser_client.get(f"/jobs/{job_id}/delete/").content.decode()
    response = browser_client.post(f"/jobs/{job_id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    assert f'href="/jobs/{job_id}/"' not in listed(browser_client)
    assert "was deleted" in browser_client.get(f"/jobs/{job_id}/").content.decode()
    assert client_for(test_key).get(f"/v1/jobs/{job_id}").status_code == 410


def test_another_accounts_job_cannot_be_canceled_or_deleted_from_the_dashboard(
    browser_client, other_user
):
    theirs = create(api_key_create(user=other_user, mode="test")[1])
    for action in ("cancel", "delete"):
        assert browser_client.get(f"/jobs/{theirs}/{action}/").status_code == 404
        assert browser_client.post(f"/jobs/{theirs}/{action}/").status_code == 404
    assert Job.objects.get(pk=theirs).deleted_at is None
