import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiKey
from accounts.selectors import api_key_authenticate
from accounts.services import api_key_create
from tests.conftest import client_for, key_of

pytestmark = pytest.mark.django_db
SECRET_RE = re.compile(r"sk_(?:test|live)_[0-9A-Za-z]{38}")


def shown_secret(client) -> str | None:
    match = SECRET_RE.search(client.get("/keys/").content.decode())
    return match.group(0) if match else None


def test_the_keys_page_needs_a_login(client):
    response = client.get("/keys/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_keys_page_shows_test_and_live_columns_with_masks(browser_client, user):
    key, _ = api_key_create(user=user, mode="live", name="Prod server")
    page = browser_client.get("/keys/").content.decode()
    assert "Test keys" in page and "Live keys" in page
    assert key.mask in page and "Prod server" in page
    assert SECRET_RE.search(page) is None


def test_creating_a_key_shows_its_secret_once(browser_client, user):
    response = browser_client.post("/keys/create/", {"mode": "live", "name": "Prod server"})
    assert response.status_code == 302
    secret = shown_secret(browser_client)
    key = key_of(secret)
    assert (key.user, key.mode, key.name) == (user, "live", "Prod server")
    assert shown_secret(browser_client) is None


def test_a_key_shows_when_it_was_created_and_last_used(browser_client, user, test_key):
    client_for(test_key).get("/v1/jobs")
    page = browser_client.get("/keys/").content.decode()
    assert "Last used" in page
    assert "Never" in page  # the default key was never used
    assert "ago" in page


def test_rolling_a_key_shows_the_new_secret_and_the_old_one_expires_when_chosen(
    browser_client, user, test_key
):
    old = key_of(test_key)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        response = browser_client.post(f"/keys/{old.pk}/roll/", {"expire_in": "1h"})
        assert response.status_code == 302
        new_secret = shown_secret(browser_client)
        assert new_secret and new_secret != test_key
        assert api_key_authenticate(secret=test_key) is not None
        assert "Expires" in browser_client.get("/keys/").content.decode()
        clock.shift(timedelta(hours=1, seconds=1))
        assert api_key_authenticate(secret=test_key) is None
        assert api_key_authenticate(secret=new_secret) is not None
        assert client_for(test_key).get("/v1/jobs").status_code == 401


def test_rolling_now_stops_the_old_key_at_once_and_hides_it(browser_client, user, test_key):
    old = key_of(test_key)
    browser_client.post(f"/keys/{old.pk}/roll/", {"expire_in": "now"})
    assert client_for(test_key).get("/v1/jobs").status_code == 401
    assert f'data-key-id="{old.pk}"' not in browser_client.get("/keys/").content.decode()


def test_rolling_needs_a_known_expiry(browser_client, user, test_key):
    old = key_of(test_key)
    browser_client.post(f"/keys/{old.pk}/roll/", {"expire_in": "1y"})
    assert key_of(test_key).expires_at is None
    assert ApiKey.objects.filter(user=user).count() == 2  # the default key and test_key


def test_revoking_asks_for_confirmation_first(browser_client, user, test_key):
    key = key_of(test_key)
    page = browser_client.get(f"/keys/{key.pk}/revoke/").content.decode()
    assert "Revoke this key?" in page and key.mask in page
    assert api_key_authenticate(secret=test_key) is not None


def test_revoking_a_key_stops_it_and_removes_it_from_the_page(browser_client, user, test_key):
    key = key_of(test_key)
    assert browser_client.post(f"/keys/{key.pk}/revoke/").status_code == 302
    assert client_for(test_key).get("/v1/jobs").status_code == 401
    assert f'data-key-id="{key.pk}"' not in browser_client.get("/keys/").content.decode()


def test_another_accounts_key_cannot_be_rolled_or_revoked(browser_client, other_user):
    theirs, secret = api_key_create(user=other_user, mode="live")
    assert browser_client.post(f"/keys/{theirs.pk}/roll/", {"expire_in": "now"}).status_code == 404
    assert browser_client.post(f"/keys/{theirs.pk}/revoke/").status_code == 404
    assert browser_client.get(f"/keys/{theirs.pk}/revoke/").status_code == 404
    assert api_key_authenticate(secret=secret) is not None
