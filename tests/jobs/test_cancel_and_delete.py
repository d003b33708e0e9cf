"""POST /v1/jobs/:id/cancel and DELETE /v1/jobs/:id: through the real actor, an in-process
worker and its separation child, with storage checked on disk."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connection
from django.utils import timezone

from accounts.models import CreditEntry
from accounts.selectors import credit_balance
from accounts.services import credit_settle
from btro.errors import Gone, JobEnded
from jobs.models import Job
from jobs.separation.runner import SeparationProcess
from jobs.services import job_cancel, job_claim, job_delete, job_fail, job_run
from jobs.services.state import finish
from tests.conftest import client_for, run_all, stored_job, upload, wav_bytes
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)


def create(api, tier="basic", seconds=1.0):
    response = api.post(
        "/v1/jobs", {"file": upload(data=wav_bytes(seconds)), "tier": tier}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()


def exited(pid: int) -> bool:
    """The process is gone, or a zombie waiting to be reaped: it runs no more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(condition, timeout: float, step: float = 0.02) -> float:
    """Seconds until `condition()` held; fails past `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"still not true after {timeout} s: {condition}")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture
def child_pids(monkeypatch):
    """The pid of the separation child each task is handed to, in order."""
    pids: list[int] = []
    real = SeparationProcess._exchange

    def spy(self, process, *args, **kwargs):
        pids.append(process.pid)
        return real(self, process, *args, **kwargs)

    monkeypatch.setattr(SeparationProcess, "_exchange", spy)
    return pids


def stored_files(job_id: str) -> list[str]:
    job = Job.objects.get(pk=job_id)
    root = Path(default_storage.path(""))
    names = [job.input_name] if job.input_name and default_storage.exists(job.input_name) else []
    results = root / "results" / job_id
    return names + [str(p) for p in results.glob("*")] if results.exists() else names


# Cancel


def test_a_canceled_queued_job_never_starts_and_is_refunded(live_api, user, request):
    before = credit_balance(user=user)
    job = create(live_api)
    assert credit_balance(user=user) < before
    response = live_api.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "failed" and body["result"] is None
    assert body["error"]["type"] == "canceled" and "canceled" in body["error"]["message"]
    broker = request.getfixturevalue("worker")  # a worker, and the job's message, now
    broker.get_actor("run_job").send(job["id"])
    run_all(broker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.attempts == 0 and stored.claim == "" and stored.status == "failed"
    assert credit_balance(user=user) == before
    assert CreditEntry.objects.filter(job_id=job["id"], kind="refund").count() == 1


def test_a_running_job_is_stopped_within_5_s_and_the_worker_runs_the_next_job(
    live_api, user, worker, settings, monkeypatch, child_pids
):
    monkeypatch.setenv("FAKE_ENGINE_SECONDS", "120")  # read by the child at spawn
    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    before = credit_balance(user=user)
    job = create(live_api)
    wait_for(lambda: Job.objects.get(pk=job["id"]).progress >= 2, timeout=60)  # separating
    pid = child_pids[0]
    assert not exited(pid)
    start = time.monotonic()
    response = live_api.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["error"]["type"] == "canceled"
    wait_for(lambda: exited(pid), timeout=10)
    assert time.monotonic() - start < 5
    assert credit_balance(user=user) == before

    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    second = create(live_api)
    run_all(worker)  # the same (only) worker thread
    assert live_api.get(f"/v1/jobs/{second['id']}").json()["status"] == "succeeded"
    assert len(child_pids) == 2 and child_pids[1] != pid  # a fresh child
    first = Job.objects.get(pk=job["id"])
    assert first.status == "failed" and first.error_type == "canceled" and first.result is None
    assert CreditEntry.objects.filter(job_id=job["id"], kind="refund").count() == 1


def test_a_settled_job_is_refunded_cost_and_adjustment_once_and_a_second_cancel_answers_it(
    live_api, user
):
    before = credit_balance(user=user)
    job = create(live_api, "pro")
    charged = before - credit_balance(user=user)
    credit_settle(user=user, job_id=job["id"], amount=charged + 2)  # the audio ran longer
    first = live_api.post(f"/v1/jobs/{job['id']}/cancel")
    again = live_api.post(f"/v1/jobs/{job['id']}/cancel")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    refund = CreditEntry.objects.get(job_id=job["id"], kind="refund")
    assert refund.amount == charged + 2
    assert credit_balance(user=user) == before


@pytest.mark.parametrize("status, error_type", [("succeeded", ""), ("failed", "engine_error")])
def test_an_ended_job_cannot_be_canceled(live_api, user, status, error_type):
    job = stored_job(user, tier="pro", seconds=60, status=status)
    Job.objects.filter(pk=job.pk).update(error_type=error_type, completed_at=timezone.now())
    response = live_api.post(f"/v1/jobs/{job.id}/cancel")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "job_ended")
    assert "already ended" in error["message"] and status in error["message"]
    assert Job.objects.get(pk=job.pk).status == status


def test_a_test_job_canceled_within_its_2_s_ends_canceled_and_after_them_cannot_be(api):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        early = create(api)
        late = create(api)
        clock.shift(timedelta(seconds=1))
        response = api.post(f"/v1/jobs/{early['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "failed"
        assert response.json()["error"]["type"] == "canceled"
        clock.shift(timedelta(seconds=2))
        assert api.get(f"/v1/jobs/{early['id']}").json()["error"]["type"] == "canceled"
        assert api.get(f"/v1/jobs/{early['id']}").json()["result"] is None
        response = api.post(f"/v1/jobs/{late['id']}/cancel")
        assert response.status_code == 400 and "already ended" in response.content.decode()
        assert api.get(f"/v1/jobs/{late['id']}").json()["status"] == "succeeded"


def test_cancel_is_idempotent_with_a_key(live_api):
    job = create(live_api)
    headers = {"HTTP_IDEMPOTENCY_KEY": "cancel-1"}
    first = live_api.post(f"/v1/jobs/{job['id']}/cancel", **headers)
    replay = live_api.post(f"/v1/jobs/{job['id']}/cancel", **headers)
    assert first.status_code == replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()


def test_another_accounts_or_modes_job_is_a_404_to_cancel_and_delete(live_api, api, other_user):
    from accounts.services import api_key_create

    job = create(live_api)
    stranger = client_for(api_key_create(user=other_user, mode="live")[1])
    for client in (stranger, api):  # another account; the same account's test key
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 404
    assert live_api.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"


# Delete


def test_delete_removes_the_upload_and_stems_from_storage_and_the_job_answers_410(
    live_api, worker, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api, "pro")
    run_all(worker)
    body = live_api.get(f"/v1/jobs/{job['id']}").json()
    urls = [stem["url"] for stem in body["result"]["stems"].values()]
    assert len(stored_files(job["id"])) == 5  # the upload and 4 stems
    response = live_api.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": job["id"], "object": "job", "deleted": True}
    assert stored_files(job["id"]) == []
    gone = live_api.get(f"/v1/jobs/{job['id']}")
    assert gone.status_code == 410 and "deleted" in gone.json()["error"]["message"]
    for url in urls:
        stem = live_api.get(url)
        assert stem.status_code == 410 and "deleted" in stem.json()["error"]["message"]
    again = live_api.delete(f"/v1/jobs/{job['id']}")
    assert again.status_code == 410 and "deleted" in again.json()["error"]["message"]
    assert live_api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 410
    assert live_api.get("/v1/jobs").json()["data"] == []


def test_deleting_a_running_job_cancels_it_first_and_leaves_no_file(
    live_api, user, worker, settings, monkeypatch, child_pids
):
    monkeypatch.setenv("FAKE_ENGINE_SECONDS", "120")
    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    before = credit_balance(user=user)
    job = create(live_api)
    wait_for(lambda: Job.objects.get(pk=job["id"]).progress >= 2, timeout=60)
    assert live_api.delete(f"/v1/jobs/{job['id']}").status_code == 200
    assert stored_files(job["id"]) == []
    wait_for(lambda: exited(child_pids[0]), timeout=5)
    run_all(worker)
    stored = Job.objects.get(pk=job["id"])
    assert stored.error_type == "canceled" and stored.deleted_at and stored.purged_at
    assert stored_files(job["id"]) == []
    assert credit_balance(user=user) == before


def test_stems_stored_while_the_job_is_deleted_are_removed_by_the_worker(
    live_api, settings, monkeypatch
):
    """The worker stores stems after the child answered; a delete lands between two of them."""
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = create(live_api, "pro")
    real_save = FileSystemStorage.save

    def save_then_delete(self, name, content, **kwargs):
        saved = real_save(self, name, content, **kwargs)
        if name.endswith("/vocals.wav"):  # the first stem is stored: the owner deletes now
            job_delete(job=Job.objects.get(pk=job["id"]))
        return saved

    monkeypatch.setattr(FileSystemStorage, "save", save_then_delete)
    job_run(job_id=job["id"])
    stored = Job.objects.get(pk=job["id"])
    assert stored.status == "failed" and stored.error_type == "canceled" and stored.deleted_at
    assert stored_files(job["id"]) == []


# Races, on PostgreSQL: two endings at the same moment, exactly one wins


def _race(*endings):
    barrier = threading.Barrier(len(endings))
    outcomes: list[object] = [None] * len(endings)

    def run(i, ending):
        try:
            barrier.wait()
            outcomes[i] = ending()
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate(endings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("worker_ending", ["succeeds", "fails"])
def test_a_cancel_racing_the_workers_ending_wins_or_loses_whole(live_api, user, worker_ending):
    require_postgres()
    result = {"engine": "fake", "format": "wav", "sample_rate": 44100, "stems": {}}
    wins = {"worker": 0, "cancel": 0}
    for _ in range(20):
        job = job_claim(job_id=create(live_api)["id"])
        assert job is not None
        if worker_ending == "succeeds":

            def ending(job=job):
                return finish(job, status=Job.Status.SUCCEEDED, progress=100, result=result)
        else:

            def ending(job=job):
                return job_fail(job=job, error_type="engine_error", message="broken")

        ended, canceled = _race(ending, lambda job=job: job_cancel(job=Job.objects.get(pk=job.pk)))
        stored = Job.objects.get(pk=job.pk)
        refunds = CreditEntry.objects.filter(job_id=job.pk, kind="refund").count()
        if ended is True:
            wins["worker"] += 1
            assert isinstance(canceled, JobEnded)
            assert stored.error_type == ("" if worker_ending == "succeeds" else "engine_error")
            assert refunds == (0 if worker_ending == "succeeds" else 1)
        else:
            wins["cancel"] += 1
            assert ended is False and isinstance(canceled, Job)
            assert stored.error_type == "canceled" and stored.result is None
            assert refunds == 1
    assert wins["worker"] + wins["cancel"] == 20, wins


def test_of_two_deletes_racing_one_answers_the_job_and_the_other_a_410(live_api, worker):
    job = create(live_api)
    seen_by_the_second = Job.objects.get(pk=job["id"])  # both read it before either wrote
    assert live_api.delete(f"/v1/jobs/{job['id']}").status_code == 200
    with pytest.raises(Gone) as lost:
        job_delete(job=seen_by_the_second)
    assert lost.value.status == 410 and "deleted" in lost.value.message
