"""Real worker processes on a real broker and PostgreSQL: a job survives its worker's SIGKILL,
and a worker's SIGTERM (a deploy) loses no job and runs none twice."""

from __future__ import annotations

import signal
import time

import pytest

from accounts.models import CreditEntry
from accounts.services import api_key_create
from jobs.models import Job
from tests.conftest import client_for, upload, wav_bytes
from tests.services import (
    AMQP_URL,
    REDIS_URL,
    kill,
    require_postgres,
    require_service,
    spawn,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "broker_url,storage",
    [(REDIS_URL, "local"), (AMQP_URL, "local"), (AMQP_URL, "s3")],
    ids=["redis", "rabbitmq", "rabbitmq-s3"],
)
def test_a_job_whose_worker_is_killed_mid_run_still_succeeds_exactly_once(
    broker_url, storage, user, settings, tmp_path, request
):
    require_service(broker_url, "the broker")
    bucket = request.getfixturevalue("s3_storage") if storage == "s3" else None
    env = _worker_env(
        broker_url,
        settings,
        tmp_path,
        FAKE_ENGINE_SECONDS="4",
        BTRO_STALE_JOB_SECONDS="3",
        BTRO_HEARTBEAT_SECONDS="1",
        BTRO_SWEEP_INTERVAL_SECONDS="1",
        **(bucket.server.env(bucket.name) if bucket else {}),
    )
    log = tmp_path / "workers.log"
    job_id = _live_job_sent(user, broker_url)

    first = spawn(["rundramatiq", "--processes", "1", "--threads", "1"], env, log)
    second = scheduler = None
    try:
        wait_for(
            lambda: Job.objects.filter(pk=job_id, progress__gt=10).exists(), 60, "progress", log
        )
        kill(first)
        killed_at = time.monotonic()
        assert Job.objects.get(pk=job_id).status == "queued"
        second = spawn(["rundramatiq", "--processes", "1", "--threads", "1"], env, log)
        scheduler = spawn(["scheduler"], env, log)
        job = wait_for(
            lambda: Job.objects.filter(pk=job_id).exclude(status="queued").first(),
            90,
            "the job to finish",
            log,
        )
        recovery = time.monotonic() - killed_at
    finally:
        for process in (first, second, scheduler):
            if process is not None:
                kill(process)
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempts == 2
    assert sorted(job.result["stems"]) == ["bass", "drums", "other", "vocals"]
    _assert_charged_once(job_id)
    if bucket:
        assert f"results/{job_id}/vocals.wav" in bucket.keys()
    print(f"recovered in {recovery:.1f} s on {broker_url.split(':')[0]}")


@pytest.mark.parametrize("broker_url", [REDIS_URL, AMQP_URL], ids=["redis", "rabbitmq"])
@pytest.mark.parametrize("grace", [30, 1], ids=["finished-in-grace", "handed-back"])
def test_a_worker_stopped_by_sigterm_loses_no_job_and_runs_none_twice(
    broker_url, grace, user, settings, tmp_path
):
    """A deploy: the job in hand finishes within the grace period, or, past it, goes back to
    the queue at once for another worker, the attempt not counted: never after the lease's
    lapse (60 s here, and no scheduler runs)."""
    require_service(broker_url, "the broker")
    env = _worker_env(
        broker_url,
        settings,
        tmp_path,
        FAKE_ENGINE_SECONDS="5" if grace > 5 else "30",  # past the grace, or within it
        BTRO_STALE_JOB_SECONDS="60",
        BTRO_SHUTDOWN_GRACE_SECONDS=str(grace),
    )
    log = tmp_path / "workers.log"
    job_id = _live_job_sent(user, broker_url)
    args = ["rundramatiq", "--processes", "1", "--threads", "1"]
    first = spawn(args, env, log)
    second = None
    try:
        wait_for(
            lambda: Job.objects.filter(pk=job_id, progress__gt=10).exists(), 60, "progress", log
        )
        if grace < 5:  # the job goes back: another worker must be there to take it
            second = spawn(args, {**env, "FAKE_ENGINE_SECONDS": "3"}, log)
            ready = "Worker process is ready for action"
            wait_for(lambda: log.read_text().count(ready) == 2, 60, "the second worker", log)
        first.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        job = wait_for(
            lambda: Job.objects.filter(pk=job_id).exclude(status="queued").first(),
            40,
            "the job to finish",
            log,
        )
        done_in = time.monotonic() - stopped_at
        exit_code = first.wait(grace + 20)  # the stopped worker exits by itself
    finally:
        for process in (first, second):
            if process is not None:
                kill(process)
    assert exit_code == 0, log.read_text()[-3000:]
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempts == 1  # a hand-back is no failed attempt
    _assert_charged_once(job_id)
    handed_back = log.read_text().count("handed back, its worker stopping")
    assert handed_back == (1 if grace < 5 else 0)
    assert done_in < 20  # the first run's end, or the grace and the second run: not 30 s, 60 s
    print(f"SIGTERM, grace {grace} s: job done {done_in:.1f} s later on {broker_url[:5]}")


@pytest.mark.parametrize("broker_url", [REDIS_URL, AMQP_URL], ids=["redis", "rabbitmq"])
def test_a_queued_job_waits_in_the_broker_not_behind_a_busy_workers_job(
    broker_url, user, settings, tmp_path
):
    """A one-thread worker holds only the job it runs (Dramatiq would prefetch a second):
    a worker that starts while it runs takes the other job at once."""
    require_service(broker_url, "the broker")
    env = _worker_env(broker_url, settings, tmp_path, FAKE_ENGINE_SECONDS="8")
    log = tmp_path / "workers.log"
    job_ids = [_live_job(user), _live_job(user)]
    _send_to(broker_url, *job_ids)
    args = ["rundramatiq", "--processes", "1", "--threads", "1"]
    first = spawn(args, env, log)
    second = None
    try:
        running = Job.objects.filter(pk__in=job_ids, progress__gt=10)
        first_job = wait_for(running.first, 60, "the first worker's job", log)
        second = spawn(args, env, log)
        other = Job.objects.filter(pk__in=job_ids).exclude(pk=first_job.pk)
        wait_for(other.filter(progress__gt=10).exists, 60, "the second worker's job", log)
        first_job.refresh_from_db()
        started_while = first_job.status
        for job_id in job_ids:
            wait_for(Job.objects.filter(pk=job_id, status="succeeded").exists, 60, "both jobs", log)
    finally:
        for process in (first, second):
            if process is not None:
                kill(process)
    assert started_while == "queued", "the second job waited for the first one's worker"
    for job_id in job_ids:
        assert Job.objects.get(pk=job_id).attempts == 1
        _assert_charged_once(job_id)


def _worker_env(broker_url: str, settings, tmp_path, **overrides: str) -> dict[str, str]:
    """The environment of worker processes on this broker, the test database and a slow
    fake engine, with `overrides`."""
    return {
        "DATABASE_URL": require_postgres(),
        "BROKER_URL": broker_url,
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "BTRO_VAR_DIR": str(tmp_path / "var"),
        "BTRO_ENGINE": "tests.fake_engines:SlowEngine",
        **overrides,
    }


def _live_job_sent(user, broker_url: str) -> str:
    """A live pro job created through the API and sent on the real broker; its id."""
    job_id = _live_job(user)
    _send_to(broker_url, job_id)
    return job_id


def _live_job(user) -> str:
    """A live pro job created through the API (on this process's StubBroker); its id."""
    api = client_for(api_key_create(user=user, mode="live")[1])
    response = api.post(
        "/v1/jobs", {"file": upload(data=wav_bytes(2)), "tier": "pro"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _assert_charged_once(job_id: str) -> None:
    assert CreditEntry.objects.filter(job_id=job_id, kind="cost").count() == 1
    assert not CreditEntry.objects.filter(job_id=job_id, kind="refund").exists()


def _send_to(broker_url: str, *job_ids: str) -> None:
    """Enqueue on the real broker, emptied first (this test process itself runs on the
    StubBroker)."""
    from dramatiq import Broker

    from jobs.tasks import run_job

    broker: Broker
    if broker_url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=broker_url)
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=broker_url)
    broker.declare_queue("separate.dsp")
    broker.flush_all()
    for job_id in job_ids:
        broker.enqueue(run_job.message(job_id))  # a dsp-queue job, as the engine is no demucs
    broker.close()
