"""A queue per engine: a tier's jobs land on its engine's queue, and a worker started with
`--queues separate.dsp` never takes neural work."""

from __future__ import annotations

import time

import dramatiq
import pytest

from accounts.services import api_key_create
from jobs.engines import SEPARATION_QUEUES
from jobs.models import Job
from tests.conftest import client_for, upload, wav_bytes
from tests.services import REDIS_URL, kill, require_postgres, require_service, spawn, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _studio_on_demucs(settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    settings.BTRO_ENGINE_BY_TIER = {"studio": "demucs"}


@pytest.fixture
def broker():
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


def create(live_api, tier: str) -> str:
    body = {"file": upload(data=wav_bytes(1.0)), "tier": tier}
    response = live_api.post("/v1/jobs", body, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def queued(broker, queue: str) -> list[str]:
    return [dramatiq.Message.decode(m).args[0] for m in broker.queues[queue].queue]


def test_each_job_lands_on_the_queue_of_its_tiers_engine(live_api, broker):
    dsp, neural = create(live_api, "pro"), create(live_api, "studio")
    assert queued(broker, "separate.dsp") == [dsp]
    assert queued(broker, "separate.demucs") == [neural]


def test_a_worker_on_the_dsp_queue_never_takes_a_demucs_job(live_api, broker):
    worker = dramatiq.Worker(broker, queues={"separate.dsp"}, worker_threads=1)
    worker.start()
    try:
        dsp, neural = create(live_api, "pro"), create(live_api, "studio")
        broker.join("separate.dsp", fail_fast=True, timeout=60_000)
        time.sleep(0.5)  # time enough to take the other one, were it listening
    finally:
        worker.stop()
    assert Job.objects.get(pk=dsp).status == "succeeded"
    untouched = Job.objects.get(pk=neural)
    assert untouched.status == "queued" and untouched.attempts == 0
    assert queued(broker, "separate.demucs") == [neural]


def test_rundramatiq_with_queues_takes_only_that_queues_jobs_on_redis(
    user, settings, tmp_path, broker
):
    require_service(REDIS_URL, "Redis")
    database_url = require_postgres()
    from dramatiq.brokers.redis import RedisBroker

    api = client_for(api_key_create(user=user, mode="live")[1])
    dsp, neural = create(api, "pro"), create(api, "studio")
    redis = RedisBroker(url=REDIS_URL)
    for queue in SEPARATION_QUEUES:
        redis.declare_queue(queue)
    redis.flush_all()
    for queue in SEPARATION_QUEUES:  # what the web tier sent, to Redis
        for raw in broker.queues[queue].queue:
            redis.enqueue(dramatiq.Message.decode(raw))
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "BTRO_VAR_DIR": str(tmp_path / "var"),
        "BTRO_ENGINE": settings.BTRO_ENGINE,
        "BTRO_ENGINE_BY_TIER": "studio=demucs",
        # A CPU machine has no checkpoints, and needs none (README, Topology).
        "SILENCED_SYSTEM_CHECKS": "btro.E001,btro.E002",
    }
    log = tmp_path / "worker.log"
    args = ["rundramatiq", "--processes", "1", "--threads", "1", "--queues", "separate.dsp"]
    cpu = spawn(args, env, log)
    try:
        wait_for(
            lambda: Job.objects.filter(pk=dsp, status="succeeded").exists(), 60, "the dsp job", log
        )
        time.sleep(2)  # a worker that took every queue would have the other one by now
    finally:
        kill(cpu)
    assert Job.objects.get(pk=neural).attempts == 0
    assert redis.client.llen("dramatiq:separate.demucs") == 1  # still waiting for a GPU worker
    redis.flush_all()
    redis.close()


def test_on_auto_a_tier_goes_to_the_demucs_queue_once_its_checkpoints_are_there(
    live_api, broker, settings, tmp_path
):
    pytest.importorskip("demucs")
    from tests.neural_models import write_model_dir

    settings.BTRO_ENGINE, settings.BTRO_ENGINE_BY_TIER = "auto", {}
    settings.BTRO_MODEL_DIR = str(tmp_path / "models")
    before = create(live_api, "pro")
    write_model_dir(tmp_path / "models", names=("htdemucs",))  # `make models`, no restart
    after, studio = create(live_api, "pro"), create(live_api, "studio")
    assert queued(broker, "separate.dsp") == [before, studio]
    assert queued(broker, "separate.demucs") == [after]
