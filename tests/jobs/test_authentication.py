from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from accounts.models import ApiKey
from accounts.selectors import api_key_authenticate, api_key_cache_names
from accounts.services import api_key_create, api_key_revoke, api_key_roll, api_key_touch
from tests.conftest import client_for, key_of

pytestmark = pytest.mark.django_db


def assert_401(response):
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["request_id"] == response["Request-Id"]


def test_a_request_without_a_key_is_401():
    assert_401(client_for(None).get("/v1/jobs"))


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Basic dXNlcjpwYXNz", "Bearer sk_test_short", "Bearer a b", "Token sk_test_x"],
)
def test_a_malformed_authorization_header_is_401(header):
    assert_401(client_for(None).get("/v1/jobs", HTTP_AUTHORIZATION=header))


def test_an_unknown_but_well_formed_key_is_401(user):
    key, secret = api_key_create(user=user, mode="test")
    ApiKey.objects.filter(pk=key.pk).delete()
    assert_401(client_for(secret).get("/v1/jobs"))


def test_a_revoked_key_is_401_on_its_next_request(user):
    key, secret = api_key_create(user=user, mode="test")
    assert client_for(secret).get("/v1/jobs").status_code == 200
    api_key_revoke(key=key)
    assert_401(client_for(secret).get("/v1/jobs"))


def test_using_a_key_records_when_it_was_last_used(user):
    key, secret = api_key_create(user=user, mode="test")
    client_for(secret).get("/v1/jobs")
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.fixture
def key_cache(settings):
    """Keys cached as with a shared cache (the test's in-process one stands in for Redis)."""
    settings.BTRO_API_KEY_CACHE_SECONDS = 60


def warm(secret, django_assert_num_queries):
    """Two requests: the second finds the key in the cache, with no query to authenticate."""
    api = client_for(secret)
    assert api.get("/v1/jobs").status_code == 200
    with django_assert_num_queries(0):
        assert api_key_authenticate(secret=secret) is not None
    assert api.get("/v1/jobs").status_code == 200


def test_a_cached_key_is_401_on_the_request_right_after_its_revoke(
    user, key_cache, django_assert_num_queries
):
    key, secret = api_key_create(user=user, mode="live")
    warm(secret, django_assert_num_queries)
    api_key_revoke(key=key)
    assert_401(client_for(secret).get("/v1/jobs"))


def test_a_cached_key_rolled_now_is_401_on_the_next_request_and_its_successor_works(
    user, key_cache, django_assert_num_queries
):
    key, secret = api_key_create(user=user, mode="live")
    warm(secret, django_assert_num_queries)
    _, new_secret = api_key_roll(key=key, expire_in="now")
    assert_401(client_for(secret).get("/v1/jobs"))
    assert client_for(new_secret).get("/v1/jobs").status_code == 200


def test_a_cached_key_rolled_with_grace_stops_one_second_after_it(
    user, key_cache, django_assert_num_queries
):
    key, secret = api_key_create(user=user, mode="test")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        warm(secret, django_assert_num_queries)
        api_key_roll(key=key, expire_in="1h")
        assert client_for(secret).get("/v1/jobs").status_code == 200  # cached again
        clock.shift(timedelta(hours=1, seconds=1))
        assert_401(client_for(secret).get("/v1/jobs"))


def test_an_entry_stored_under_the_generation_before_a_revoke_is_not_used(user, key_cache):
    # A request that read the row before the revoke committed stores it after the revoke.
    key, secret = api_key_create(user=user, mode="live")
    stale = api_key_authenticate(secret=secret)
    api_key_revoke(key=key)
    entry_name, _ = api_key_cache_names(key.digest)
    cache.set(entry_name, stale, 60)
    assert api_key_authenticate(secret=secret) is None
    assert_401(client_for(secret).get("/v1/jobs"))


def test_a_cached_key_records_its_use_once_a_minute_not_on_every_request(
    user, settings, django_assert_num_queries
):
    settings.BTRO_API_KEY_CACHE_SECONDS = 300  # the entry outlives the minute
    key, secret = api_key_create(user=user, mode="test")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        api_key_touch(key=key_of(secret))
        clock.shift(timedelta(seconds=61))
        with django_assert_num_queries(1):  # the write; the key comes from the cache
            api_key_touch(key=key_of(secret))
        with django_assert_num_queries(0):  # the cache holds the new time of use
            api_key_touch(key=key_of(secret))
        key.refresh_from_db()
        assert key.last_used_at == timezone.now()
