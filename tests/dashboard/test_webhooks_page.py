"""The Webhooks page: add an endpoint (secret shown once), its state, recent deliveries with
Resend, and Send test event."""

from __future__ import annotations

import re

import pytest

from accounts.services import api_key_create
from tests.conftest import client_for, upload
from tests.webhooks.receiver import receiver, verify  # noqa: F401 (the fixture)
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import delivery_attempt, endpoint_create

pytestmark = pytest.mark.django_db
WHSEC_RE = re.compile(r"whsec_[0-9A-Za-z]{32}")


def add(client, url="https://hooks.example.com/x", mode="test"):
    body = {"mode": mode, "url": url, "enabled_events": ["job.succeeded", "job.failed"]}
    return client.post("/webhooks/create/", body)


def test_the_webhooks_page_needs_a_login(client):
    response = client.get("/webhooks/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_adding_an_endpoint_shows_its_secret_once_in_its_mode(browser_client, user):
    response = add(browser_client, mode="live")
    assert response.status_code == 302 and response["Location"].endswith("?mode=live")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.livemode and endpoint.enabled_events == ["job.succeeded", "job.failed"]
    page = browser_client.get(response["Location"]).content.decode()
    assert endpoint.secret in page and 'data-copy="#revealed-secret"' in page
    assert "https://hooks.example.com/x" in page
    again = browser_client.get("/webhooks/?mode=live").content.decode()
    assert endpoint.secret not in again and "https://hooks.example.com/x" in again
    test_page = browser_client.get("/webhooks/?mode=test").content.decode()
    assert "https://hooks.example.com/x" not in test_page


def test_a_bad_url_is_refused_with_a_message(browser_client):
    add(browser_client, url="ftp://example.com/")
    assert not WebhookEndpoint.objects.exists()
    assert "http" in browser_client.get("/webhooks/").content.decode()


def test_a_disabled_endpoint_says_so(browser_client, user):
    endpoint = endpoint_create(
        user=user, livemode=False, url="https://a.example.com/", enabled_events=["*"]
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled=True, disabled_reason="Every delivery failed for 3 days."
    )
    page = browser_client.get("/webhooks/").content.decode()
    assert "Disabled" in page and "Every delivery failed for 3 days." in page
    browser_client.post(f"/webhooks/{endpoint.id}/toggle/")
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).disabled


@pytest.mark.django_db(transaction=True)
def test_send_test_event_then_resend_reach_the_receiver_and_show_in_the_deliveries(
    browser_client,
    user,
    receiver,  # noqa: F811
):
    receiver.statuses = [500, 200]
    endpoint = endpoint_create(user=user, livemode=False, url=receiver.url, enabled_events=["*"])
    browser_client.post(f"/webhooks/{endpoint.id}/test/")
    delivery = Delivery.objects.get()
    delivery_attempt(delivery_id=delivery.pk)
    first = verify(receiver.wait_for(1)[0], endpoint.secret)
    assert first["type"] == "job.succeeded" and first["data"]["object"]["status"] == "succeeded"
    page = browser_client.get("/webhooks/").content.decode()
    assert "job.succeeded" in page and "500" in page and "test event" in page
    assert "xxxx" in page  # the response excerpt
    assert "Resend" in page and " ms" in page
    browser_client.post(f"/webhooks/deliveries/{delivery.pk}/resend/")
    delivery_attempt(delivery_id=delivery.pk)
    second = verify(receiver.wait_for(2)[1], endpoint.secret)
    assert second["id"] == first["id"]
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED


def test_a_jobs_deliveries_link_to_the_job(browser_client, user, settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    endpoint_create(user=user, livemode=False, url="https://a.example.com/", enabled_events=["*"])
    api = client_for(api_key_create(user=user, mode="test", name="t")[1])
    job = api.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart").json()
    page = browser_client.get("/webhooks/").content.decode()
    assert f'href="/jobs/{job["id"]}/"' in page and "Pending" in page


def test_another_accounts_endpoint_and_delivery_are_404(browser_client, other_user):
    theirs = endpoint_create(
        user=other_user, livemode=False, url="https://a.example.com/", enabled_events=["*"]
    )
    for action in ("toggle", "roll", "test", "delete"):
        assert browser_client.post(f"/webhooks/{theirs.id}/{action}/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk, disabled=False).exists()
    assert browser_client.post("/webhooks/deliveries/1/resend/").status_code == 404
