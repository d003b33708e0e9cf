"""The SDK and CLI on the routes of issue 14's siblings (cancel, delete, metadata, list filters,
events, webhook endpoints, `btro listen`): these pass once those branches are merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from btro_sdk import JobCanceled, errors, webhooks

from tests.clients.conftest import answer, run_async
from tests.conftest import wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)
SDK = Path(__file__).resolve().parents[2] / "clients" / "python"


def test_metadata_is_set_on_create_and_updated_and_unset(sdk):
    job = sdk.jobs.create(wav_bytes(0.2), tier="basic", metadata={"song": "42", "take": "3"})
    assert job.metadata == {"song": "42", "take": "3"}
    updated = sdk.jobs.update(job.id, metadata={"take": None, "mix": "b"})
    assert updated.metadata == {"song": "42", "mix": "b"}
    assert sdk.jobs.retrieve(job.id).metadata == updated.metadata


def test_a_queued_live_job_is_canceled_and_wait_raises_job_canceled(live_sdk):
    job = live_sdk.jobs.create(wav_bytes(0.5), tier="pro")  # no worker: it stays queued
    canceled = live_sdk.jobs.cancel(job.id)
    assert canceled.status in ("failed", "canceled") and canceled.error["type"] == "canceled"
    with pytest.raises(JobCanceled):
        job.wait(timeout=10)


def test_cancelling_a_job_that_already_ended_raises_job_ended_a_kind_of_bad_request(sdk):
    job = sdk.jobs.create(wav_bytes(0.2), tier="basic")
    time.sleep(2.1)  # test jobs read succeeded from 2 s after creation
    with pytest.raises(errors.JobEnded) as raised:
        sdk.jobs.cancel(job.id)
    assert isinstance(raised.value, errors.BadRequest) and raised.value.code == "job_ended"


def test_a_deleted_job_answers_gone(sdk):
    job = sdk.jobs.create(wav_bytes(0.2), tier="basic")
    assert sdk.jobs.delete(job.id) == {"id": job.id, "object": "job", "deleted": True}
    with pytest.raises(errors.Gone):
        sdk.jobs.retrieve(job.id)


def test_list_filters_by_status_tier_and_creation_time(sdk):
    before = int(time.time())
    basic = sdk.jobs.create(wav_bytes(0.2), tier="basic")
    pro = sdk.jobs.create(wav_bytes(0.2), tier="pro")
    assert [j.id for j in sdk.jobs.list(tier="pro")] == [pro.id]
    assert [j.id for j in sdk.jobs.list(created_gte=before, limit=1)] == [pro.id, basic.id]
    assert list(sdk.jobs.list(created_lte=before - 60)) == []
    time.sleep(2.1)  # test jobs read succeeded from 2 s after creation
    assert {j.id for j in sdk.jobs.list(status="succeeded")} == {basic.id, pro.id}


def test_webhook_endpoints_are_created_listed_updated_rolled_and_deleted(sdk):
    endpoint = sdk.webhook_endpoints.create(
        url="https://example.com/hook", enabled_events=["job.succeeded", "job.failed"]
    )
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.enabled_events == ["job.succeeded", "job.failed"]
    assert [e.id for e in sdk.webhook_endpoints.list()] == [endpoint.id]
    updated = sdk.webhook_endpoints.update(endpoint.id, description="ci", disabled=True)
    assert updated.description == "ci" and updated.status == "disabled"
    rolled = sdk.webhook_endpoints.roll_secret(endpoint.id)
    assert rolled.secret.startswith("whsec_") and rolled.secret != endpoint.secret
    assert sdk.webhook_endpoints.retrieve(endpoint.id).id == endpoint.id
    assert sdk.webhook_endpoints.delete(endpoint.id)["deleted"] is True
    with pytest.raises(errors.NotFound):
        sdk.webhook_endpoints.retrieve(endpoint.id)


def test_the_async_client_manages_webhook_endpoints_too(test_key, live_server, transactional_db):
    from btro_sdk import AsyncClient

    async def flow() -> None:
        async with AsyncClient(api_key=test_key, base_url=live_server.url) as client:
            endpoint = await client.webhook_endpoints.create(
                url="https://example.com/hook", enabled_events=["*"]
            )
            assert endpoint.secret.startswith("whsec_")
            assert [e.id async for e in client.webhook_endpoints.list()] == [endpoint.id]
            updated = await client.webhook_endpoints.update(endpoint.id, disabled=True)
            assert updated.status == "disabled"
            rolled = await client.webhook_endpoints.roll_secret(endpoint.id)
            assert rolled.secret != endpoint.secret
            assert (await client.webhook_endpoints.retrieve(endpoint.id)).id == endpoint.id
            assert (await client.webhook_endpoints.delete(endpoint.id))["deleted"] is True
            assert (await client.webhook_secret()).startswith("whsec_")

    run_async(flow())


def test_events_are_listed_by_type_and_retrieved(live_sdk, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = live_sdk.jobs.create(wav_bytes(0.5), tier="basic").wait(timeout=60)
    events = list(live_sdk.events.list(type="job.succeeded"))
    assert [e.data.object.id for e in events] == [job.id]
    assert live_sdk.events.retrieve(events[0].id).type == "job.succeeded"
    assert list(live_sdk.events.list(type="job.failed")) == []


def test_the_cli_cancels_and_deletes(live_server, live_key, test_key, sdk):
    env = {**os.environ, "BTRO_BASE_URL": live_server.url, "PYTHONPATH": str(SDK)}

    def btro(key: str, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "btro_sdk", "--api-key", key, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    job = sdk.jobs.create(wav_bytes(0.2), tier="basic")
    deleted = btro(test_key, "jobs", "delete", job.id)
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["deleted"] is True
    again = btro(test_key, "jobs", "get", job.id)
    assert again.returncode == 1 and "410" in again.stderr


def test_listen_forwards_new_events_signed_with_the_secret_it_prints(
    live_server, live_key, live_sdk, worker, settings, loopback
):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    hook = loopback(lambda handler, index: answer(handler, 200))
    env = {**os.environ, "BTRO_API_KEY": live_key, "BTRO_BASE_URL": live_server.url}
    env["PYTHONPATH"] = str(SDK)
    command = [sys.executable, "-m", "btro_sdk", "listen", "--forward-to", f"{hook.url}/hook"]
    listen = subprocess.Popen(
        [*command, "--interval", "0.5", "--max-events", "1"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert listen.stdout is not None
    try:
        ready = listen.stdout.readline()
        assert ready.startswith("Ready! Your webhook signing secret is whsec_")
        secret = ready.split()[6]
        job = live_sdk.jobs.create(wav_bytes(0.5), tier="basic").wait(timeout=60)
        assert listen.wait(timeout=30) == 0
        output = listen.stdout.read()
    finally:
        listen.kill()
    assert "--> job.succeeded [evt_" in output and "<-- [200] POST" in output
    [delivery] = hook.seen
    event = webhooks.construct_event(delivery.body, delivery.headers["BTRO-Signature"], secret)
    assert event.type == "job.succeeded" and event.data.object.id == job.id


def test_the_job_webhook_secret_is_read(sdk):
    assert sdk.webhook_secret().startswith("whsec_")
