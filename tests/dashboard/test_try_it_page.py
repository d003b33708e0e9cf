import html

import pytest

from accounts.models import ApiKey
from accounts.selectors import credit_balance
from jobs.models import Job
from tests.conftest import upload

pytestmark = pytest.mark.django_db


def submit(client, **fields):
    data = {"file": upload(), "mode": "test", "tier": "pro", "format": "wav", **fields}
    return client.post("/try/", data)


def test_try_it_creates_a_test_job_and_goes_to_its_page(browser_client, user):
    response = submit(browser_client, tier="studio")
    job = Job.objects.get(user=user)
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.id}/"
    assert (job.livemode, job.tier, job.filename) == (False, "studio", "track.wav")


def test_try_it_in_live_mode_charges_the_account_and_creates_no_key(browser_client, user):
    assert not ApiKey.objects.filter(user=user, mode="live").exists()
    balance = credit_balance(user=user)
    assert submit(browser_client, mode="live", tier="basic").status_code == 302
    job = Job.objects.get(user=user)
    assert job.livemode and job.status == Job.Status.QUEUED
    assert not ApiKey.objects.filter(user=user, mode="live").exists()
    assert credit_balance(user=user) == balance - 1


def test_try_it_shows_the_apis_message_for_a_file_that_is_not_audio(browser_client, user):
    response = submit(browser_client, file=upload("notes.txt", b"not audio at all" * 100))
    assert response.status_code == 400
    assert "audio" in response.content.decode().lower()
    assert not Job.objects.exists()


def test_try_it_refuses_a_file_over_the_size_limit(browser_client, settings):
    settings.BTRO_MAX_UPLOAD_BYTES = 1000
    response = submit(browser_client)
    assert response.status_code == 413
    assert "larger than" in response.content.decode()


def test_try_it_shows_the_equivalent_curl_command_with_this_servers_url(browser_client):
    page = html.unescape(browser_client.get("/try/").content.decode())
    assert 'curl --request POST "http://testserver/v1/jobs"' in page
    assert "Authorization: Bearer $BTRO_API_KEY" in page
    assert "tier=pro" in page
