"""Stems in an S3 bucket, on a real SeaweedFS: uploads and stems land there, downloads are a
redirect to a signed URL the client fetches from the bucket, expiry empties it, large files
go in parts, and an outage mid-job is retried."""

from __future__ import annotations

import io
import math
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import soundfile as sf
import time_machine
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_sweep
from tests.conftest import run_all, upload, wav_bytes
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)
STEMS = ["bass", "drums", "other", "vocals"]


@pytest.fixture(autouse=True)
def _fast_engine(settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"


def create(api, seconds=1.0, tier="pro"):
    response = api.post(
        "/v1/jobs", {"file": upload(data=wav_bytes(seconds)), "tier": tier}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def stem_urls(api, job_id) -> dict[str, str]:
    body = api.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] == "succeeded", body
    return {name: info["url"] for name, info in body["result"]["stems"].items()}


def test_a_live_jobs_upload_and_stems_land_in_the_bucket(live_api, worker, s3_storage):
    job_id = create(live_api)
    run_all(worker)
    job = Job.objects.get(pk=job_id)
    assert s3_storage.keys() == sorted(
        [job.input_name] + [f"results/{job_id}/{stem}.wav" for stem in STEMS]
    )
    assert s3_storage.read(job.input_name) == wav_bytes(1.0)


def test_a_stem_download_redirects_to_a_signed_url_that_serves_the_bytes(
    live_api, worker, s3_storage, settings
):
    job_id = create(live_api, seconds=2.0)
    run_all(worker)
    url = stem_urls(live_api, job_id)["vocals"]
    response = live_api.get(url)
    assert response.status_code == 302 and response["Cache-Control"] == "no-store"
    signed = response["Location"]
    assert signed.startswith(f"{s3_storage.server.endpoint}/{s3_storage.name}/results/")
    query = parse_qs(urlsplit(signed).query)
    assert query["X-Amz-Expires"] == [str(settings.AWS_QUERYSTRING_EXPIRE)] == ["300"]
    assert live_api.head(url).status_code == 302

    stored = s3_storage.read(f"results/{job_id}/vocals.wav")
    whole = requests.get(signed, timeout=10)  # a real client, from the bucket itself
    assert whole.status_code == 200 and whole.content == stored
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Content-Disposition"] == 'attachment; filename="track-vocals.wav"'
    part = requests.get(signed, headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == stored[100:200]
    # What a browser does: follow the API's redirect to the bucket, Range and all.
    followed = requests.get(
        signed, headers={"Range": "bytes=-10"}, allow_redirects=True, timeout=10
    )
    assert followed.content == stored[-10:]


def test_an_unsigned_or_altered_bucket_url_is_refused_by_the_bucket(live_api, worker, s3_storage):
    job_id = create(live_api)
    run_all(worker)
    signed = live_api.get(stem_urls(live_api, job_id)["vocals"])["Location"]
    assert requests.get(signed.split("?")[0], timeout=10).status_code == 403
    tampered = signed.replace("X-Amz-Expires=300", "X-Amz-Expires=86400")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_the_redirect_keeps_the_files_rules_a_wrong_token_404_expired_410(
    live_api, worker, s3_storage
):
    job_id = create(live_api)
    run_all(worker)
    url = stem_urls(live_api, job_id)["vocals"]
    token = url.split("/")[-2]
    assert live_api.get(url.replace(token, "x" * len(token))).status_code == 404
    assert live_api.get(url.replace("vocals.wav", "piano.wav")).status_code == 404
    job = Job.objects.get(pk=job_id)
    assert job.expires_at is not None
    with time_machine.travel(job.expires_at + timedelta(seconds=1), tick=False):
        response = live_api.get(url)
        assert response.status_code == 410 and "Location" not in response


def test_test_jobs_keep_streaming_their_samples_with_s3_configured(api, s3_storage):
    job_id = create(api)
    with time_machine.travel(time.time() + 10, tick=False):
        url = stem_urls(api, job_id)["vocals"]
        response = api.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content)[:4] == b"RIFF"
    assert not [key for key in s3_storage.keys() if key.startswith("results/")]


def test_expiry_purges_the_upload_and_stems_from_the_bucket(live_api, worker, s3_storage):
    job_id = create(live_api)
    run_all(worker)
    assert len(s3_storage.keys()) == 5
    # Expired by the row, not by a travelling clock: S3 refuses requests signed in the future.
    Job.objects.filter(pk=job_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert job_sweep()["purged"] == 1
    assert s3_storage.keys() == []


def test_stems_past_the_threshold_are_written_in_parts(live_api, worker, s3_storage, settings):
    # 5 MiB is S3's smallest part: a 20 s stereo stem (about 7 MB as float WAV) takes two.
    settings.BTRO_S3_MULTIPART_BYTES = part = 5 * 1024 * 1024
    s3_storage.point(settings)
    job_id = create(live_api, seconds=20.0)
    run_all(worker)
    stem = f"results/{job_id}/vocals.wav"
    head = s3_storage.client.head_object(Bucket=s3_storage.name, Key=stem)
    parts = math.ceil(head["ContentLength"] / part)
    assert parts >= 2 and head["ETag"].strip('"').endswith(f"-{parts}")  # a multipart ETag
    signed = live_api.get(stem_urls(live_api, job_id)["vocals"])["Location"]
    downloaded = requests.get(signed, timeout=30).content
    assert downloaded == s3_storage.read(stem) and len(downloaded) == head["ContentLength"]
    audio, rate = sf.read(io.BytesIO(downloaded))
    assert rate == 44100 and len(audio) == 20 * 44100


def test_a_storage_outage_mid_job_is_retried_and_the_job_then_succeeds(
    live_api, worker, s3_storage, settings
):
    settings.BTRO_ENGINE = "tests.fake_engines:SlowEngine"
    settings.BTRO_JOB_MAX_ATTEMPTS = 3
    job_id = create(live_api)
    deadline = time.monotonic() + 30
    while not Job.objects.filter(pk=job_id, progress__gt=0).exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    s3_storage.point(settings, endpoint=f"http://127.0.0.1:{free_port()}")  # storage gone
    while not Job.objects.filter(pk=job_id, attempts=1, claim="").exists():
        assert time.monotonic() < deadline + 30, "the job was not released"
        assert Job.objects.get(pk=job_id).status == "queued"
        time.sleep(0.05)
    s3_storage.point(settings)  # back, before the broker's retry
    run_all(worker)
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded", (job.error_type, job.error_message)
    assert job.attempts == 2
    assert f"results/{job_id}/vocals.wav" in s3_storage.keys()
