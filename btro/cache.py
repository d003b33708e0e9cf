"""Django's Redis cache with fewer round trips, for the per-request rate-limit counters.

Django builds a new redis-py client (and its table of response callbacks) on every cache
call, and its `incr` asks EXISTS before INCRBY. Here each connection pool keeps one client,
and `incr` is one server-side script: the same answers, one round trip instead of two.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis

# INCRBY only a key that exists: INCRBY alone would create a missing (expired) one.
_INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""
# One more on each key, from 1 with its expiry (ARGV[i], s) where it is missing.
_INCR_OR_ADD = """
local counts = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 1, 'EX', ARGV[i], 'NX') then counts[i] = 1
  else counts[i] = redis.call('INCR', key) end
end
return counts
"""


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_existing: Any = None
        self._incr_or_add: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        if index not in self._clients:  # redis-py clients are thread-safe
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            self._clients[index] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return self._clients[index]

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        if self._incr_existing is None:
            self._incr_existing = client.register_script(_INCR_EXISTING)  # EVALSHA after
        value = self._incr_existing(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def incr_or_add_many(self, timeouts: dict[str, int]) -> list[int]:
        client = self.get_client(None, write=True)
        if self._incr_or_add is None:
            self._incr_or_add = client.register_script(_INCR_OR_ADD)
        return self._incr_or_add(keys=list(timeouts), args=list(timeouts.values()), client=client)


class RedisCache(django_redis.RedisCache):
    # Django's cached_property, which django-stubs leave out (an annotation: no attribute here).
    _cache: RedisCacheClient

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def incr_or_add_many(self, timeouts: dict[str, int], version: int | None = None) -> dict:
        """Count one more on each key, in one round trip; a missing key starts at 1 and
        expires after its timeout (s). The new counts, by key."""
        names = {self.make_and_validate_key(key, version=version): key for key in timeouts}
        client = self._cache
        counts = client.incr_or_add_many({name: timeouts[key] for name, key in names.items()})
        return dict(zip(names.values(), counts, strict=True))
