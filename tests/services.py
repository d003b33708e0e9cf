"""Finding the real PostgreSQL, Redis and RabbitMQ for the tests that need them.

Under CI=true a missing service is a failure; on a laptop without it, the test skips.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI") == "true"
REDIS_URL = os.environ.get("BTRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("BTRO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _reachable(url: str) -> bool:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def require_service(url: str, what: str) -> None:
    if not _reachable(url):
        if IN_CI:
            pytest.fail(f"{what} is not reachable at {url}, and CI must test against it")
        pytest.skip(f"{what} is not running at {url}")


def require_postgres() -> str:
    """The test database's URL, for worker processes to share it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        if IN_CI:
            pytest.fail("CI must run on PostgreSQL: set DATABASE_URL")
        pytest.skip("needs PostgreSQL shared with worker processes (set DATABASE_URL)")
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"
