import html
import re

import pytest

from accounts.selectors import api_key_list_current
from btro.errors import CATALOGUE

pytestmark = pytest.mark.django_db


def test_the_api_reference_renders_endpoints_parameters_objects_and_errors(client):
    page = html.unescape(client.get("/docs/").content.decode())
    assert "Create a job" in page and "Retrieve a job" in page and "List jobs" in page
    assert "<code>/v1/jobs</code>" in page and "<code>/v1/jobs/{id}</code>" in page
    assert "Cancel a job" in page and "<code>/v1/jobs/{id}/cancel</code>" in page
    assert "Delete a job" in page
    for name in ("file", "tier", "starting_after", "limit"):
        assert f"<code>{name}</code>" in page
    assert "The Job object" in page
    for field in ("livemode", "completed_at", "expires_at", "progress", "result"):
        assert f"<code>{field}</code>" in page
    for error in ("invalid_parameter", "authentication_error", "rate_limit_exceeded", "api_error"):
        assert error in page
    assert "request_id" in page
    # from the schema's error answers
    assert "The job's results have expired, or the job was deleted." in page


def test_the_api_reference_quickstart_uses_this_server_and_the_users_test_key_mask(
    browser_client, user
):
    mask = api_key_list_current(user=user).get(mode="test").mask
    page = html.unescape(browser_client.get("/docs/").content.decode())
    assert 'curl --request POST "http://testserver/v1/jobs"' in page
    assert f"Authorization: Bearer {mask}" in page


def test_the_api_reference_shows_the_full_key_while_it_is_being_shown_once(client):
    client.post("/signup/", {"email": "new@example.com", "password": "a long passphrase 42"})
    page = html.unescape(client.get("/docs/").content.decode())
    assert re.search(r"Authorization: Bearer sk_test_[0-9A-Za-z]{38}", page)


def test_the_api_reference_lists_every_error_type_of_the_catalogue(client):
    page = html.unescape(client.get("/docs/").content.decode())
    for error in CATALOGUE:
        assert f'<td class="mono">{error.code}</td>' in page and f"<td>{error.when}</td>" in page


def test_the_api_reference_documents_balance_and_usage(client):
    page = html.unescape(client.get("/docs/").content.decode())
    assert "Retrieve the balance" in page and "List usage" in page
    assert "<code>/v1/balance</code>" in page and "<code>/v1/usage</code>" in page
    for name in ("start", "end", "available", "prices", "minutes", "credits"):
        assert f"<code>{name}</code>" in page


def test_the_api_reference_documents_webhooks_and_events(client):
    page = html.unescape(client.get("/docs/").content.decode())
    for summary in (
        "Create a webhook endpoint",
        "Update a webhook endpoint",
        "Delete a webhook endpoint",
        "Roll an endpoint's signing secret",
        "List events",
        "Retrieve an event",
        "Retrieve the job webhook secret",
    ):
        assert summary in page
    for path in ("/v1/webhook_endpoints", "/v1/webhook_endpoints/{id}/roll_secret", "/v1/events"):
        assert f"<code>{path}</code>" in page
    assert "The Event object" in page and "The WebhookEndpoint object" in page
    assert "BTRO-Signature" in page and "HMAC-SHA256" in page
    for name in ("enabled_events", "disabled", "webhook", "data"):
        assert f"<code>{name}</code>" in page
