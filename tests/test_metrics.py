"""GET /metrics: Prometheus' text format behind BTRO_METRICS_TOKEN (a 404 without it), counting
jobs, separation and audio seconds, queues, webhook deliveries, credits and requests.

The counters are process-wide and other tests move them too: every check is on a difference."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Job
from tests.conftest import run_all, upload, wav_bytes
from tests.webhooks.receiver import receiver  # noqa: F401 (the fixture)
from webhooks.models import Delivery
from webhooks.services import delivery_attempt

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-0123456789"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scrape(settings):
    """Read /metrics as Prometheus does: a function (name, labels) → value, 0 when absent."""
    settings.BTRO_METRICS_TOKEN = TOKEN

    def read():
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

        def value(name: str, **labels: str) -> float:
            return samples.get((name, frozenset(labels.items())), 0.0)

        return value

    return read


def create(client, tier: str = "pro", seconds: float = 1.0, **extra) -> dict:
    data = {"file": upload(data=wav_bytes(seconds)), "tier": tier, **extra}
    response = client.post("/v1/jobs", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_metrics_is_a_404_while_no_token_is_set(settings):
    settings.BTRO_METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert b"btro_" not in response.content


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN]
)
def test_metrics_refuses_a_missing_or_wrong_token(settings, header):
    settings.BTRO_METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert b"btro_" not in response.content


def test_metrics_answers_the_token_in_the_text_format(settings):
    settings.BTRO_METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"btro_jobs_created", "btro_queue_depth", "btro_webhook_deliveries"} <= names
    assert "django_http_responses_total_by_status_view_method" in names
    post = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert post.status_code == 405


def test_a_test_job_and_a_live_job_are_counted_by_tier_and_engine(api, live_api, worker, scrape):
    before = scrape()
    create(api, tier="basic")
    live = create(live_api, tier="pro", seconds=2.0)
    run_all(worker)
    assert live_api.get(f"/v1/jobs/{live['id']}").json()["status"] == "succeeded"
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    test, dsp = {"tier": "basic", "engine": "test"}, {"tier": "pro", "engine": "dsp"}
    assert delta("btro_jobs_created_total", **test) == 1
    assert delta("btro_jobs_succeeded_total", **test) == 1
    assert delta("btro_jobs_created_total", **dsp) == 1
    assert delta("btro_jobs_succeeded_total", **dsp) == 1
    assert delta("btro_job_separation_seconds_count", **dsp) == 1
    assert delta("btro_job_separation_seconds_sum", **dsp) > 0
    assert delta("btro_job_audio_seconds_count", **dsp) == 1
    assert delta("btro_job_audio_seconds_sum", **dsp) == pytest.approx(2.0)
    assert delta("btro_job_separation_seconds_count", **test) == 0  # no engine ran
    charged = Job.objects.get(pk=live["id"]).cost
    assert charged > 0 and delta("btro_credits_charged_total") == charged
    created = {"view": "jobs:job-list", "method": "POST", "status": "201"}
    assert delta("django_http_responses_total_by_status_view_method_total", **created) == 2


def test_a_failed_job_is_counted_by_its_error_type_and_refunded(live_api, worker, scrape, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    before = scrape()
    job = create(live_api, tier="basic")
    run_all(worker)
    after = scrape()
    labels = {"tier": "basic", "engine": "tests.fake_engines:FailingEngine"}
    failed = {**labels, "error_type": "engine_error"}
    name = "btro_jobs_failed_total"
    assert after(name, **failed) - before(name, **failed) == 1
    assert after("btro_jobs_succeeded_total", **labels) == before(
        "btro_jobs_succeeded_total", **labels
    )
    cost = Job.objects.get(pk=job["id"]).cost
    refunded = after("btro_credits_refunded_total") - before("btro_credits_refunded_total")
    assert cost > 0 and refunded == cost


def test_the_queue_gauges_count_a_waiting_live_job_and_its_age(live_api, scrape):
    dramatiq.get_broker().flush_all()
    before = scrape()
    job = create(live_api, tier="pro")  # no worker runs: it waits on separate.dsp
    Job.objects.filter(pk=job["id"]).update(enqueued_at=timezone.now() - timedelta(seconds=90))
    after = scrape()
    dsp, demucs = {"queue": "separate.dsp"}, {"queue": "separate.demucs"}
    assert after("btro_queue_depth", **dsp) - before("btro_queue_depth", **dsp) == 1
    assert after("btro_queue_depth", **demucs) == before("btro_queue_depth", **demucs)
    assert 90 <= after("btro_queue_oldest_age_seconds", **dsp) < 150
    Job.objects.filter(pk=job["id"]).update(claim="a-run")  # a worker took it
    taken = scrape()
    assert taken("btro_queue_depth", **dsp) == before("btro_queue_depth", **dsp)
    assert taken("btro_queue_running", **dsp) - before("btro_queue_running", **dsp) == 1
    dramatiq.get_broker().flush_all()


def test_webhook_deliveries_are_counted_by_outcome(live_api, worker, receiver, scrape, settings):  # noqa: F811
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    receiver.statuses = [500, 200]  # the first attempt fails, the retry succeeds
    name = "btro_webhook_deliveries_total"
    before = scrape()
    create(live_api, tier="basic", webhook=receiver.url)
    run_all(worker)
    receiver.wait_for(1)
    delivery = Delivery.objects.get()
    for _ in range(100):  # the attempt is recorded a moment after the receiver answers
        delivery.refresh_from_db()
        if delivery.response_status is not None:
            break
        time.sleep(0.05)
    after = scrape()
    assert after(name, outcome="retrying") - before(name, outcome="retrying") == 1
    assert after(name, outcome="succeeded") == before(name, outcome="succeeded")
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    delivery_attempt(delivery_id=delivery.pk)  # the retry, now
    assert len(receiver.received) == 2
    again = scrape()
    assert again(name, outcome="succeeded") - before(name, outcome="succeeded") == 1
    assert again(name, outcome="failed") == before(name, outcome="failed")


def test_a_made_up_method_or_content_length_adds_no_series_and_no_error(scrape):
    client = Client()
    assert client.generic("BREW", "/healthz").status_code == 405
    response = client.post("/healthz", data=b"x", content_type="text/plain", CONTENT_LENGTH="abc")
    assert response.status_code < 500
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'method="BREW"' not in text and 'method="<invalid method>"' in text


COUNT_A_JOB = """
import django
django.setup()
from btro.metrics import JOBS_CREATED
JOBS_CREATED.labels(tier="pro", engine="dsp").inc()
"""

SCRAPE = """
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
import jobs.views
setup_test_environment()
jobs.views.queue_states = dict  # no database in this process: the queues are tested above
response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer %s")
assert response.status_code == 200, response.content
print(response.content.decode())
"""


def test_with_a_multiprocess_directory_a_scrape_adds_up_every_process(tmp_path):
    """gunicorn's and rundramatiq's processes share PROMETHEUS_MULTIPROC_DIR: one scrape of
    any web process shows what every worker process counted."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "btro.settings",
        "BTRO_METRICS_TOKEN": TOKEN,
    }
    for _ in range(2):  # two worker processes, one job each
        subprocess.run([sys.executable, "-c", COUNT_A_JOB], env=env, cwd=ROOT, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPE % TOKEN],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    [sample] = [
        s for s in families["btro_jobs_created"].samples if s.name == "btro_jobs_created_total"
    ]
    assert sample.labels == {"tier": "pro", "engine": "dsp"} and sample.value == 2
