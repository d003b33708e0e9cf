"""Concurrent use of a real `manage.py serve`, on the embedded default and on PostgreSQL:
no answer is a server error, no balance goes below zero, every accepted job is paid once."""

from __future__ import annotations

import pytest

from tests import burst
from tests.services import require_postgres

CREDITS = 30  # 15 pro jobs per account: the burst asks for more, so the balance runs out


@pytest.fixture(
    params=[
        "embedded",
        # The server uses the test database: migrated here, and emptied afterwards.
        pytest.param("postgres", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def server_env(request, tmp_path) -> dict[str, str]:
    if request.param == "postgres":
        url = require_postgres()
        return burst.server_env(tmp_path / "var", DATABASE_URL=url, BTRO_FREE_CREDITS=str(CREDITS))
    env = burst.server_env(tmp_path / "var", BTRO_FREE_CREDITS=str(CREDITS))
    burst.manage("migrate", "--noinput", env=env)
    return env


def test_100_concurrent_creations_and_polls_get_no_server_error_and_every_job_is_paid_once(
    server_env, tmp_path
):
    emails = burst.emails(3)
    accounts = burst.accounts_create(server_env, emails, keys=2)
    with burst.serving(server_env, tmp_path / "serve.log") as port:
        result = burst.burst(port, accounts, burst.short_wav(), total=100)
    after = burst.ledger(server_env, emails)
    log = (tmp_path / "serve.log").read_text()
    assert result.errors == [], (result.statuses, burst.exceptions(log))
    assert result.statuses[402] > 0, result.statuses  # the balance check was raced
    assert all(account["lowest"] >= 0 for account in after["accounts"].values()), after
    assert burst.unpaid(result, after) == []
