"""GET /healthz and GET /readyz: no key, no throttle, 200 or 503 naming the component down,
and nothing secret in them."""

from __future__ import annotations

import io
import json

import dramatiq
import environ
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from tests.services import (
    AMQP_URL,
    REDIS_URL,
    free_port,
    private_postgres,
    private_redis,
    require_postgres,
    require_service,
)


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def broker_at():
    """Swap the process's broker for one at a URL of the test's choosing."""
    original = dramatiq.get_broker()

    def swap(url: str) -> None:
        if url.startswith("redis"):
            from dramatiq.brokers.redis import RedisBroker

            dramatiq.set_broker(RedisBroker(url=url))
        else:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            dramatiq.set_broker(RabbitmqBroker(url=url))

    yield swap
    dramatiq.set_broker(original)


def components(response) -> dict[str, str]:
    return {name: c["status"] for name, c in response.json()["components"].items()}


def test_healthz_answers_without_a_key_or_a_query(client):
    response = client.get("/healthz")  # no django_db mark: a query would raise
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_ok_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    # The embedded default runs jobs here: its engines' checkpoints are part of it.
    assert components(response) == dict.fromkeys(
        ["database", "cache", "broker", "storage", "models"], "ok"
    )


@pytest.mark.django_db
def test_the_probes_are_neither_throttled_nor_under_v1(client, settings):
    settings.BTRO_RATE_POLL = settings.BTRO_RATE_READ = "1/m"
    assert all(client.get("/readyz").status_code == 200 for _ in range(5))
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))
    assert client.get("/v1/readyz").status_code == 404


@pytest.mark.django_db
def test_another_method_is_a_405_envelope(client):
    response = client.post("/readyz")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_readyz_is_503_naming_the_broker_when_it_is_down_and_tells_no_secret(
    client, broker_at, scheme
):
    port = free_port()  # nothing listens there
    broker_at(f"{scheme}://guest:s3cret-pass@127.0.0.1:{port}/")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["components"]["broker"]["status"] == "error"
    assert body["components"]["broker"]["reason"]
    assert components(response)["database"] == "ok"
    for secret in ("s3cret", "127.0.0.1", str(port), "guest"):
        assert secret not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [REDIS_URL, AMQP_URL], ids=["redis", "rabbitmq"])
def test_readyz_is_ok_on_a_real_broker(client, broker_at, url):
    require_service(url, "the broker")
    broker_at(url)
    response = client.get("/readyz")
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_when_its_postgresql_stops(client, monkeypatch):
    require_postgres()  # SQLite's test database cannot go away
    with private_postgres() as postgres:
        database = environ.Env.db_url_config(postgres.url)
        connection.close()
        for name in ("HOST", "PORT", "NAME", "USER", "PASSWORD"):
            monkeypatch.setitem(connection.settings_dict, name, database[name])
        try:
            before = client.get("/readyz")
            postgres.stop()
            response = client.get("/readyz")
        finally:
            connection.close()
            monkeypatch.undo()
    assert before.status_code == 200, before.content
    assert response.status_code == 503
    assert components(response) == {**components(before), "database": "error"}
    for secret in ("127.0.0.1", str(database["PORT"]), "postgres"):
        assert secret not in response.content.decode()


@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_its_redis_stops(client, broker_at, tmp_path):
    with private_redis(tmp_path) as redis:
        broker_at(redis.url)
        before = client.get("/readyz")
        redis.stop()
        response = client.get("/readyz")
    assert before.status_code == 200, before.content
    assert response.status_code == 503
    assert components(response) == {**components(before), "broker": "error"}


@pytest.mark.django_db
def test_readyz_checks_the_bucket_on_s3(client, s3_storage, settings):
    assert components(client.get("/readyz"))["storage"] == "ok"
    s3_storage.point(settings, endpoint=f"http://127.0.0.1:{free_port()}")
    response = client.get("/readyz")
    assert response.status_code == 503 and components(response)["storage"] == "error"
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_a_worker_configured_for_demucs_without_checkpoints_is_not_ready(
    client, settings, tmp_path
):
    settings.BTRO_ENGINE_BY_TIER = {"studio": "demucs"}
    settings.BTRO_MODEL_DIR = str(tmp_path / "empty")
    response = client.get("/readyz")
    assert response.status_code == 503 and components(response)["models"] == "error"
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("readyz", stdout=out)
    assert json.loads(out.getvalue())["components"]["models"]["status"] == "error"
    # A web tier (jobs run on workers) needs no checkpoints.
    settings.BTRO_EMBEDDED_WORKER = False
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_the_readyz_command_is_a_workers_probe(settings):
    out = io.StringIO()
    call_command("readyz", stdout=out)
    assert json.loads(out.getvalue())["status"] == "ok"
