"""Keys over their life: revoked and rolled keys stop at once; key material is never logged
or stored."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.services import api_key_create, api_key_revoke, api_key_roll
from tests.conftest import client_for, upload

pytestmark = pytest.mark.django_db


def ok(api) -> bool:
    response = api.get("/v1/jobs")
    assert response.status_code in (200, 401), response.content
    if response.status_code == 401:
        assert response.json()["error"]["type"] == "authentication_error"
    return response.status_code == 200


def test_a_revoked_key_fails_on_its_very_next_request(user):
    key, secret = api_key_create(user=user, mode="live")
    api = client_for(secret)
    assert ok(api)
    api_key_revoke(key=key)
    assert not ok(api)
    assert api.get("/v1/jobs/job_live_x").status_code == 401


def test_a_rolled_key_works_through_its_grace_and_fails_one_second_after(user):
    key, old_secret = api_key_create(user=user, mode="test")
    old, new = client_for(old_secret), client_for("")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert ok(old)  # last_used_at is written now: the next checks are not cached reads
        _, new_secret = api_key_roll(key=key, expire_in="1h")
        new = client_for(new_secret)
        clock.shift(timedelta(hours=1) - timedelta(seconds=1))
        assert ok(old) and ok(new)
        clock.shift(timedelta(seconds=2))
        assert not ok(old)
        assert ok(new)


def test_rolling_with_no_grace_stops_the_old_key_at_once(user):
    key, old_secret = api_key_create(user=user, mode="live")
    _, new_secret = api_key_roll(key=key, expire_in="now")
    assert not ok(client_for(old_secret))
    assert ok(client_for(new_secret))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter()
        parts = []
        for record in self.records:
            parts.append(formatter.format(record))  # message, exception and stack
            parts.append(repr(record.args))
            # Every extra but django.request's live request object, which is not log text
            # (its repr shows a query string: a key put in the URL is the client's leak).
            parts.extend(repr(v) for k, v in vars(record).items() if k != "request")
        return "\n".join(parts)


@contextmanager
def every_log_record() -> Iterator[_Capture]:
    """Every record of every logger, SQL included, whatever the configured levels."""
    capture = _Capture()
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(capture)
    connection.force_debug_cursor = True  # django.db.backends logs each query at DEBUG
    try:
        yield capture
    finally:
        connection.force_debug_cursor = False
        for logger, level, disabled in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)
            logger.disabled = disabled


def _material(secret: str) -> list[str]:
    """What must never be written: the secret, and its random body alone."""
    return [secret, secret.split("_", 2)[2][:32]]


def test_key_material_never_reaches_the_logs_or_the_database(user, other_user, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    live_key, live = api_key_create(user=user, mode="live")
    test_key, test = api_key_create(user=user, mode="test")
    revoked_key, revoked = api_key_create(user=other_user, mode="test")
    api_key_revoke(key=revoked_key)
    rolled_key, rolled = api_key_create(user=other_user, mode="live")
    secrets = [live, test, revoked, rolled]
    with every_log_record() as logs:
        _, fresh = api_key_roll(key=rolled_key, expire_in="now")
        secrets.append(fresh)
        for secret in (live, test):
            api = client_for(secret)
            job = api.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart")
            assert job.status_code == 201, job.content
            assert api.get(f"/v1/jobs/{job.json()['id']}").status_code == 200
            assert api.get("/v1/jobs/job_test_nope").status_code == 404
            bad = api.post("/v1/jobs", {"file": upload(data=b"not audio"), "tier": "basic"})
            assert bad.status_code == 400
        # Every way a key can fail: revoked, rolled away, mistyped, padded, wrong scheme.
        attempts = [
            f"Bearer {revoked}",
            f"Bearer {rolled}",
            f"Bearer {live[:-1]}{'Y' if live.endswith('X') else 'X'}",
            f"Bearer {live}extra",
            f"Bearer {live} {live}",
            f"Token {live}",
            "Basic " + base64.b64encode(f"{live}:".encode()).decode(),
        ]
        for authorization in attempts:
            response = client_for(None).get("/v1/jobs", HTTP_AUTHORIZATION=authorization)
            assert response.status_code == 401
        assert client_for(None).get("/v1/jobs", {"api_key": test}).status_code == 401
    assert logs.records, "the capture saw nothing: it would not see a leak either"
    text = logs.text()
    assert "accounts_apikey" in text  # the SQL was captured too
    for secret in secrets:
        for material in _material(secret):
            assert material not in text
    stored = _every_text_value()
    for secret in secrets:
        for material in _material(secret):
            assert not [where for where, value in stored if material in value]
    assert any(live_key.digest in value for _, value in stored)  # the scan does read rows


def _every_text_value() -> list[tuple[str, str]]:
    """(table.column, value) for every column of every row, cast to text."""
    out: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            description = connection.introspection.get_table_description(cursor, table)
            columns = [column.name for column in description]
            quoted = ", ".join(f"CAST({connection.ops.quote_name(c)} AS TEXT)" for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                pairs = zip(columns, row, strict=True)
                out.extend((f"{table}.{c}", v) for c, v in pairs if v is not None)
    return out
