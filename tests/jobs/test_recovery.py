"""After a crash: progress never steps back, a restart sends each job once, and a refused
creation leaves nothing behind in storage. Leases: a killed worker's job is sent again for
its lease's lapse, and a stopping worker hands its job back."""

import time
from datetime import datetime, timedelta
from pathlib import Path

import dramatiq
import pytest
import time_machine
from django.core.files.storage import storages
from django.db import DatabaseError
from django.utils import timezone

from accounts.models import CreditEntry
from jobs.models import Job
from jobs.services import job_heartbeat, job_run, job_sweep, worker_stopping
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
    def down(job_id, **options):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("jobs.services.state._enqueue", down)
    response = create(live_api)
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert Path(settings.MEDIA_ROOT, job.input_name).is_file()
    monkeypatch.undo()
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert job_sweep()["requeued"] == 1


def sent(broker, queue="separate.dsp") -> list[dramatiq.Message]:
    return [dramatiq.Message.decode(m) for m in broker.queues[queue].queue]


def held(job_id: str, *, claim: str = "run-1", beat_ago: float = 1.0, attempts: int = 1) -> None:
    """The job as a run holding it leaves it, its last heartbeat `beat_ago` seconds ago."""
    Job.objects.filter(pk=job_id).update(
        claim=claim, heartbeat_at=timezone.now() - timedelta(seconds=beat_ago), attempts=attempts
    )


def test_a_delivery_finding_a_live_lease_sends_the_job_again_for_its_lapse(live_api, broker):
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    held(job_id, beat_ago=4)  # BTRO_STALE_JOB_SECONDS=10: lapses in about 6 s
    job_run(job_id=job_id)  # RabbitMQ's redelivery of a killed worker's message
    (again,) = sent(broker, "separate.dsp.DQ")
    assert again.args == (job_id,) and again.kwargs == {"held_by": "run-1"}
    assert 6_000 <= again.options["eta"] - time.time() * 1000 <= 7_000
    assert Job.objects.get(pk=job_id).attempts == 1  # not taken
    # The holder renewed its lease meanwhile: it is alive, and that message ends there.
    broker.flush_all()
    held(job_id, beat_ago=0)
    job_run(job_id=job_id, held_by="run-1")
    assert sent(broker, "separate.dsp.DQ") == []
    # Another run holds it now: that one is waited out in turn.
    held(job_id, claim="run-2", beat_ago=0)
    job_run(job_id=job_id, held_by="run-1")
    assert [m.kwargs for m in sent(broker, "separate.dsp.DQ")] == [{"held_by": "run-2"}]


def test_the_message_sent_for_a_lapse_takes_the_job_once_the_lease_has_lapsed(
    live_api, broker, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    held(job_id, beat_ago=settings.BTRO_STALE_JOB_SECONDS + 1)  # its worker was killed
    job_run(job_id=job_id, held_by="run-1")
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded" and job.attempts == 2


def test_the_sweep_sends_a_lease_lapsing_before_the_next_sweep_once_for_its_lapse(
    live_api, broker, settings
):
    settings.BTRO_SWEEP_INTERVAL_SECONDS = 5
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    held(job_id, beat_ago=3)  # alive as far as anyone knows: lapses in 7 s
    assert job_sweep()["requeued"] == 0
    held(job_id, beat_ago=7)  # silent for two beats: lapses in 3 s, before the next sweep
    assert job_sweep()["requeued"] == 1
    (due,) = sent(broker, "separate.dsp.DQ")
    assert due.kwargs == {"held_by": "run-1"}
    assert 3_000 <= due.options["eta"] - time.time() * 1000 <= 4_000
    assert Job.objects.get(pk=job_id).claim == "run-1"  # kept until it lapses
    assert job_sweep()["requeued"] == 0  # the next sweep (and a lapse later) send no other
    job = Job.objects.get(pk=job_id)
    assert job.heartbeat_at is not None
    with time_machine.travel(job.heartbeat_at + timedelta(seconds=12), tick=False):
        assert job_sweep()["requeued"] == 0
    assert len(sent(broker, "separate.dsp.DQ")) == 1 and sent(broker) == []


def test_the_sweep_gives_up_a_lapsed_job_out_of_attempts_and_no_delivery_takes_it(
    live_api, broker, settings
):
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    held(job_id, beat_ago=60, attempts=settings.BTRO_JOB_MAX_ATTEMPTS)
    job_run(job_id=job_id)  # a redelivery: no fourth run, and no message bounced
    assert Job.objects.get(pk=job_id).attempts == settings.BTRO_JOB_MAX_ATTEMPTS
    assert sent(broker) == [] and sent(broker, "separate.dsp.DQ") == []
    assert job_sweep()["failed"] == 1
    assert Job.objects.get(pk=job_id).error_type == "worker_lost"


def test_a_run_past_its_worker_shutdown_grace_hands_the_job_back_uncounted(
    live_api, broker, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    settings.BTRO_SHUTDOWN_GRACE_SECONDS = 0.5
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    worker_stopping(True)  # SIGTERM
    try:
        started = time.monotonic()
        job_run(job_id=job_id)
        took = time.monotonic() - started
    finally:
        worker_stopping(False)
    job = Job.objects.get(pk=job_id)
    assert took < 5  # the fake engine takes 6 s: its child was killed
    assert (job.status, job.claim, job.heartbeat_at, job.attempts) == ("queued", "", None, 0)
    assert [m.args for m in sent(broker)] == [(job_id,)]  # sent again at once
    assert not CreditEntry.objects.filter(job_id=job_id, kind="refund").exists()


def test_a_run_renews_its_lease_while_it_stores_its_stems(live_api, broker, settings, monkeypatch):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    settings.BTRO_HEARTBEAT_SECONDS = 0.2
    job_id = create(live_api).json()["id"]
    broker.flush_all()
    beats: list[datetime | None] = []
    storage_class = type(storages["default"])  # the class default_storage stands for
    save = storage_class.save

    def slow_save(storage, name, content, **kwargs):
        beats.append(Job.objects.get(pk=job_id).heartbeat_at)
        time.sleep(0.6)  # a slow storage: no progress, no callback from the run meanwhile
        beats.append(Job.objects.get(pk=job_id).heartbeat_at)
        return save(storage, name, content, **kwargs)

    monkeypatch.setattr(storage_class, "save", slow_save)
    job_run(job_id=job_id)
    assert Job.objects.get(pk=job_id).status == "succeeded"
    stamps = [at for at in beats if at is not None]
    assert stamps == beats  # each save saw a lease
    assert all(after > before for before, after in zip(stamps[::2], stamps[1::2], strict=True))
