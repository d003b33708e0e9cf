"""Events delivered to a real HTTP receiver on loopback: signed, retried, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from django.utils import timezone

from jobs.services import job_sweep
from tests.conftest import run_all, upload, wav_bytes
from tests.services import require_postgres
from tests.webhooks.receiver import verify
from webhooks.models import Delivery, Event
from webhooks.services import delivery_attempt, event_record

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def endpoint(client, url, events=("job.succeeded", "job.failed")) -> dict:
    response = client.post("/v1/webhook_endpoints", {"url": url, "enabled_events[]": list(events)})
    assert response.status_code == 201, response.content
    return response.json()


def create_job(client, **extra) -> dict:
    data = {"file": upload(data=wav_bytes(1.0)), "tier": "basic", **extra}
    response = client.post("/v1/jobs", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_live_job_delivers_one_signed_event_that_verifies(live_api, worker, receiver, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    secret = endpoint(live_api, receiver.url)["secret"]
    assert secret.startswith("whsec_")
    job = create_job(live_api)
    run_all(worker)
    [received] = receiver.wait_for(1)
    event = verify(received, secret)
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert event["type"] == "job.succeeded" and event["livemode"] is True
    shown = live_api.get(f"/v1/jobs/{job['id']}").json()
    assert event["data"]["object"]["id"] == job["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["created"] == shown["completed_at"]
    url = event["data"]["object"]["result"]["stems"]["vocals"]["url"]
    assert url.startswith(settings.BTRO_PUBLIC_URL + "/v1/files/")
    assert url.removeprefix(settings.BTRO_PUBLIC_URL) in shown["result"]["stems"]["vocals"]["url"]
    assert live_api.get(f"/v1/events/{event['id']}").json() == event
    time.sleep(0.3)
    worker.join("webhooks", timeout=60_000)
    assert len(receiver.received) == 1
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED


def test_a_failed_live_job_sends_job_failed(live_api, worker, receiver, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    secret = endpoint(live_api, receiver.url, events=["*"])["secret"]
    job = create_job(live_api)
    run_all(worker)
    event = verify(receiver.wait_for(1)[0], secret)
    assert event["type"] == "job.failed"
    assert event["data"]["object"]["id"] == job["id"]
    assert event["data"]["object"]["error"]["type"] == "engine_error"


def test_a_test_job_delivers_job_succeeded_at_its_completion_to_test_endpoints_only(
    api, live_api, worker, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 1.0
    secret = endpoint(api, receiver.url)["secret"]
    endpoint(live_api, receiver.url + "live")
    started = time.monotonic()
    job = create_job(api, tier="pro")
    assert api.get("/v1/events").json()["data"] == []  # not due yet
    [received] = receiver.wait_for(1)
    assert received.at - started >= 0.95
    event = verify(received, secret)
    assert event["type"] == "job.succeeded" and event["livemode"] is False
    assert event["data"]["object"]["id"] == job["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["data"]["object"]["result"]["engine"] == "test"
    assert event["created"] == job["created"] + 1
    assert [e["id"] for e in api.get("/v1/events").json()["data"]] == [event["id"]]
    assert live_api.get("/v1/events").json()["data"] == []
    time.sleep(0.3)
    assert len(receiver.received) == 1
    assert receiver.received[0].path == "/hooks/"  # not /hooks/live


def test_a_receiver_answering_500_twice_gets_the_event_on_the_third_attempt_after_the_backoff(
    api, worker, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    settings.BTRO_WEBHOOK_RETRY_SCHEDULE = [0.4, 0.8]
    receiver.statuses = [500, 500, 200]
    secret = endpoint(api, receiver.url)["secret"]
    create_job(api)
    first, second, third = receiver.wait_for(3)
    assert second.at - first.at >= 0.38 and third.at - second.at >= 0.78
    assert len({verify(r, secret)["id"] for r in (first, second, third)}) == 1
    time.sleep(0.3)
    assert len(receiver.received) == 3
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.SUCCEEDED and delivery.attempts == 3
    assert delivery.response_status == 200 and delivery.next_attempt_at is None


def test_a_failed_attempt_keeps_a_few_kb_of_the_answer_and_schedules_the_next(
    api, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    receiver.statuses = [503]
    endpoint(api, receiver.url)
    create_job(api)
    delivery = Delivery.objects.get()
    before = timezone.now()
    delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING and delivery.response_status == 503
    assert len(delivery.response_excerpt) == 4096 and "503" in delivery.error
    assert delivery.latency_ms is not None and delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 59 <= wait <= 61  # the schedule's first step: 1 minute


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_a_failure_and_is_not_followed(api, receiver, settings, status):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    receiver.statuses = [status]
    endpoint(api, receiver.url)
    create_job(api)
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    assert len(receiver.received) == 1
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.response_status == status


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(api, receiver, settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    settings.BTRO_WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.5
    endpoint(api, receiver.url)
    create_job(api)
    started = time.monotonic()
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    assert time.monotonic() - started < 1.2
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.response_status is None
    assert delivery.error


def test_a_lost_delivery_message_is_sent_again_by_the_sweep(api, receiver, settings, monkeypatch):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    broker = dramatiq.get_broker()
    broker.flush_all()
    secret = endpoint(api, receiver.url)["secret"]
    create_job(api)
    broker.flush_all()  # the broker lost the message
    assert job_sweep()["webhooks_resent"] == 0  # not late yet
    Delivery.objects.update(
        sent_at=timezone.now() - timedelta(minutes=1),
        next_attempt_at=timezone.now() - timedelta(minutes=1),
    )
    assert job_sweep()["webhooks_resent"] == 1
    assert job_sweep()["webhooks_resent"] == 0  # once per resend period
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        verify(receiver.wait_for(1)[0], secret)
    finally:
        worker.stop()
        broker.flush_all()


def test_a_test_job_canceled_before_its_2_s_sends_job_failed_never_job_succeeded(
    api, worker, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0.6
    secret = endpoint(api, receiver.url, events=["*"])["secret"]
    job = create_job(api)
    due = Event.objects.get()
    # What cancel does within the 2 s: the job's ending rewritten, its event recorded again.
    canceled = {**due.data["object"], "status": "failed", "result": None}
    canceled["error"] = {"type": "canceled", "message": "Canceled."}
    now = timezone.now()
    event_record(user_id=due.user_id, livemode=False, type="job.failed", job=canceled, at=now)
    event = verify(receiver.wait_for(1)[0], secret)
    assert event["type"] == "job.failed" and event["data"]["object"]["id"] == job["id"]
    assert event["id"] == due.id  # the same event, replaced
    time.sleep(0.9)
    assert len(receiver.received) == 1
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


KILLED_AFTER_COMMIT = """
import os, signal, sys
import django
django.setup()
from django.db import transaction
from jobs.services.state import finish, job_claim
job = job_claim(job_id=sys.argv[1])
with transaction.atomic():
    # Killed the moment the job's last transition commits, before any hook sends a message.
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    stems = {"vocals": {"bytes": 1, "duration": 1.0}, "instrumental": {"bytes": 1, "duration": 1.0}}
    result = {"engine": "dsp", "format": "wav", "sample_rate": 44100, "stems": stems}
    finish(job, status="succeeded", progress=100, result=result)
print("not killed")
"""


def test_a_worker_killed_right_after_the_jobs_last_transition_loses_no_event(live_api, receiver):
    database_url = require_postgres()
    broker = dramatiq.get_broker()
    broker.flush_all()
    secret = endpoint(live_api, receiver.url)["secret"]
    job = create_job(live_api)
    broker.flush_all()  # no worker here takes the job: the child process does
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "btro.settings"}
    env.pop("BROKER_URL", None)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_COMMIT, job["id"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert live_api.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.attempts == 0
    assert receiver.received == []
    assert job_sweep(requeue_seconds=0)["webhooks_resent"] == 1  # what `serve` does at start
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        event = verify(receiver.wait_for(1)[0], secret)
    finally:
        worker.stop()
        broker.flush_all()
    assert event["type"] == "job.succeeded" and event["data"]["object"]["id"] == job["id"]


def test_canceling_a_test_job_within_its_2_s_sends_job_failed_canceled_only(
    api, worker, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0.8
    secret = endpoint(api, receiver.url, events=["*"])["secret"]
    job = create_job(api)
    response = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200, response.content
    event = verify(receiver.wait_for(1)[0], secret)
    assert event["type"] == "job.failed"
    assert event["data"]["object"]["error"]["type"] == "canceled"
    time.sleep(1.2)  # past the job's original completion: no job.succeeded comes
    assert len(receiver.received) == 1
    assert [e["type"] for e in api.get("/v1/events").json()["data"]] == ["job.failed"]


def test_a_delivery_whose_worker_died_mid_attempt_is_resent_once_its_lease_ends(
    api, receiver, settings
):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0
    broker = dramatiq.get_broker()
    endpoint(api, receiver.url)
    create_job(api)
    broker.flush_all()
    long_ago = timezone.now() - timedelta(minutes=5)
    in_flight = timezone.now() + timedelta(seconds=20)
    Delivery.objects.update(sent_at=long_ago, next_attempt_at=long_ago, locked_until=in_flight)
    assert job_sweep()["webhooks_resent"] == 0  # the attempt may still be running
    Delivery.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    assert job_sweep()["webhooks_resent"] == 1
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED
    broker.flush_all()
