"""btro.cache on a real Redis: Django's cache contract with fewer round trips, the rate-limit
counters and the API-key cache on it."""

from __future__ import annotations

import secrets

import pytest
import time_machine
from django.utils import timezone

from accounts.services import api_key_create, api_key_revoke
from btro.cache import RedisCache
from tests.conftest import client_for, upload
from tests.services import REDIS_URL, require_service


@pytest.fixture
def redis_cache(settings):
    """The default cache on Redis, its keys under a prefix of this test's own."""
    require_service(REDIS_URL, "Redis")
    prefix = f"btro-test-{secrets.token_hex(4)}"
    settings.CACHES = {
        "default": {"BACKEND": "btro.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}
    }
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    yield cache
    client = cache._cache.get_client(write=True)
    for name in client.scan_iter(f"{prefix}:*"):
        client.delete(name)


def test_incr_counts_a_key_that_exists_and_refuses_one_that_does_not(redis_cache):
    with pytest.raises(ValueError):
        redis_cache.incr("missing")
    assert redis_cache.get("missing") is None  # not created by the refused incr
    redis_cache.set("n", 1)
    assert redis_cache.incr("n") == 2
    assert redis_cache.incr("n", 5) == 7
    assert redis_cache.get("n") == 7


def test_incr_or_add_many_starts_missing_keys_at_one_with_their_expiry(redis_cache):
    assert redis_cache.incr_or_add_many({"a": 60, "b": 7}) == {"a": 1, "b": 1}
    assert redis_cache.incr_or_add_many({"a": 60, "b": 7}) == {"a": 2, "b": 2}
    client = redis_cache._cache.get_client()
    assert 55 <= client.ttl(redis_cache.make_key("a")) <= 60
    assert 0 < client.ttl(redis_cache.make_key("b")) <= 7
    assert redis_cache.get("a") == 2


@pytest.mark.django_db
def test_polls_past_the_limit_are_429_with_the_counters_in_redis(redis_cache, api, settings):
    settings.BTRO_RATE_POLL = "2/m"
    created = api.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart")
    job_id = created.json()["id"]
    with time_machine.travel(timezone.now(), tick=False):
        answers = [api.get(f"/v1/jobs/{job_id}") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1].json()["error"]["type"] == "rate_limit_exceeded"
    assert int(answers[-1]["Retry-After"]) >= 1


@pytest.mark.django_db
def test_a_key_cached_in_redis_is_401_on_the_request_after_its_revoke(redis_cache, user, settings):
    settings.BTRO_API_KEY_CACHE_SECONDS = 60
    key, secret = api_key_create(user=user, mode="live")
    api = client_for(secret)
    assert api.get("/v1/jobs").status_code == 200
    assert api.get("/v1/jobs").status_code == 200  # from the cache
    api_key_revoke(key=key)
    assert api.get("/v1/jobs").status_code == 401
