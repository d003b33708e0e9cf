"""After a crash: progress never steps back, a restart sends each job once, and a refused
creation leaves nothing behind in storage."""

from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from django.db import DatabaseError
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_heartbeat, job_sweep
from tests.conftest import upload, wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    """The StubBroker with no worker: messages stay in the queue to be counted."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


def create(live_api, seconds=1.0, data=None, tier="pro"):
    body = {"file": upload(data=data if data is not None else wav_bytes(seconds)), "tier": tier}
    return live_api.post("/v1/jobs", body, format="multipart")


def stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_rerun_after_a_crash_never_moves_progress_backwards(live_api, broker):
    broker.flush_all()
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    Job.objects.filter(pk=job_id).update(claim="run-1", progress=60, attempts=1)
    job = Job.objects.get(pk=job_id)
    # The second run starts again from the beginning and reports small figures.
    job_heartbeat(job=job, progress=5)
    assert Job.objects.get(pk=job_id).progress == 60
    assert live_api.get(f"/v1/jobs/{job_id}").json()["progress"] == 60
    job_heartbeat(job=job, progress=75)
    assert live_api.get(f"/v1/jobs/{job_id}").json()["progress"] == 75


def test_a_restart_sends_each_unfinished_job_exactly_once(live_api, broker):
    broker.flush_all()
    dead = create(live_api).json()["id"]
    untaken = create(live_api).json()["id"]
    broker.flush_all()  # the in-memory broker lost everything with the old process
    Job.objects.filter(pk=dead).update(
        claim="old-process", heartbeat_at=timezone.now() - timedelta(seconds=1), attempts=1
    )
    counts = job_sweep(stale_seconds=0, requeue_seconds=0)  # what `serve` does on start
    sent = [dramatiq.Message.decode(m).args[0] for m in broker.queues["separate.dsp"].queue]
    assert sorted(sent) == sorted([dead, untaken])
    assert counts["requeued"] == 2


def test_a_refused_creation_leaves_nothing_in_storage(live_api, settings):
    settings.BTRO_MAX_DURATION_SECONDS = 1.5
    assert create(live_api, seconds=2.0).status_code == 400  # too long
    assert create(live_api, data=b"not audio at all" * 100).status_code == 400
    settings.BTRO_CREDITS_PER_MINUTE = {**settings.BTRO_CREDITS_PER_MINUTE, "pro": 10_000}
    assert create(live_api).status_code == 402
    assert stored_files(settings) == []
    assert not Job.objects.exists()


def test_a_server_error_while_charging_leaves_nothing_in_storage(live_api, settings, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("the database went away")

    monkeypatch.setattr("jobs.services.create.credit_charge", broken)
    live_api.raise_request_exception = False
    assert create(live_api).status_code == 500
    assert stored_files(settings) == []
    assert not Job.objects.exists()


def test_a_broker_outage_at_creation_keeps_the_job_for_the_sweep_to_send(
    live_api, settings, monkeypatch, broker
):
    def down(job_id):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("jobs.services.state._enqueue", down)
    response = create(live_api)
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert Path(settings.MEDIA_ROOT, job.input_name).is_file()
    monkeypatch.undo()
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert job_sweep()["requeued"] == 1
