"""The SDK's job flow against a real server (live_server): create, wait, download, list."""

from __future__ import annotations

import io
import time

import pytest
import soundfile as sf
from btro_sdk import AsyncClient, Client, JobFailed, errors

from tests.clients.conftest import run_async
from tests.conftest import wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_test_job_is_created_from_a_path_waited_for_and_its_stems_downloaded(
    live_server, test_key, tmp_path
):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(1.0))
    uploaded: list[tuple[int, int | None]] = []
    seen: list[tuple[str, int]] = []
    # No retries: a 429 while polling would raise, so wait() keeps to the API's poll limit.
    with Client(api_key=test_key, base_url=live_server.url, max_retries=0) as client:
        job = client.jobs.create(
            song, tier="pro", on_upload_progress=lambda d, t: uploaded.append((d, t))
        )
        assert job.id.startswith("job_test_") and job.status == "queued"
        assert job.filename == "song.wav" and job.livemode is False
        finished = job.wait(timeout=30, on_progress=lambda j: seen.append((j.status, j.progress)))
        assert finished is job and job.status == "succeeded"
        assert seen[0][0] == "queued" and seen[-1] == ("succeeded", 100)
        assert uploaded[-1] == (song.stat().st_size, song.stat().st_size)
        files = job.download(tmp_path / "stems")
    assert sorted(files) == ["bass", "drums", "other", "vocals"]
    for stem, path in files.items():
        assert path == tmp_path / "stems" / f"{stem}.wav"
        assert path.stat().st_size == job.result["stems"][stem]["bytes"]
        audio, rate = sf.read(path)
        assert rate == job.result["sample_rate"] and len(audio) > 0
    assert not list((tmp_path / "stems").glob("*.part"))


@pytest.mark.parametrize("kind", ["bytes", "file object", "unseekable"])
def test_create_takes_bytes_and_file_objects(sdk, kind):
    data = wav_bytes(0.5)
    if kind == "bytes":
        file: object = data
    elif kind == "file object":
        file = io.BytesIO(b"junk" + data)
        file.seek(4)  # the upload starts where the caller's file stands
        file.name = "/somewhere/take.wav"
    else:
        file = io.BufferedReader(io.BytesIO(data))
        file.seekable = lambda: False  # type: ignore[method-assign]
    job = sdk.jobs.create(file, tier="basic", format="flac", filename=None)
    assert job.status == "queued" and job.tier == "basic"
    assert job.filename == ("take.wav" if kind == "file object" else "upload")


def test_a_live_job_runs_in_a_worker_and_its_stems_download(live_sdk, worker, settings, tmp_path):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    job = live_sdk.jobs.create(wav_bytes(1.0), tier="basic", filename="live.wav")
    assert job.livemode is True and not job.id.startswith("job_test_")
    job.wait(timeout=60, poll_interval=2.0)
    assert job.status == "succeeded" and job.result["engine"] == "fake"
    files = live_sdk.jobs.retrieve(job.id).download(tmp_path)
    for stem in ("vocals", "instrumental"):
        audio, rate = sf.read(files[stem])
        assert rate == 44100 and len(audio) == 44100


def test_wait_raises_a_typed_error_for_a_failed_job(live_sdk, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:FailingEngine"
    job = live_sdk.jobs.create(wav_bytes(0.5), tier="pro")
    with pytest.raises(JobFailed) as failed:
        job.wait(timeout=60)
    assert failed.value.type == "engine_error"
    assert failed.value.message == "The fake engine refuses this track."
    assert failed.value.job["id"] == job.id and job.status == "failed"


def test_wait_gives_up_at_its_timeout(sdk):
    job = sdk.jobs.create(wav_bytes(0.5), tier="pro")
    started = time.monotonic()
    with pytest.raises(errors.WaitTimeout) as timeout:
        job.wait(timeout=1)
    assert time.monotonic() - started < 1.5 and timeout.value.job["status"] == "queued"


def test_list_follows_has_more_across_pages_newest_first(sdk):
    created = [sdk.jobs.create(wav_bytes(0.2), tier="basic").id for _ in range(5)]
    listed = [job.id for job in sdk.jobs.list(limit=2)]
    assert listed == created[::-1]
    assert all(job.object == "job" for job in sdk.jobs.list(limit=100))


def test_balance_and_usage(sdk, user):
    balance = sdk.balance()
    assert balance.object == "balance" and balance.available > 0 and "pro" in balance.prices
    sdk.jobs.create(wav_bytes(0.5), tier="pro")
    now = int(time.time())
    usage = sdk.usage(start=now - 3600, end=now + 10)
    assert usage.object == "usage" and usage.start == now - 3600
    assert [(day.tier, day.credits) for day in usage.data] == [("pro", 0)]


def test_the_async_client_does_the_same_flow(live_server, test_key, tmp_path):
    async def flow() -> dict:
        async with AsyncClient(api_key=test_key, base_url=live_server.url) as client:
            job = await client.jobs.create(wav_bytes(0.5), tier="basic")
            await job.wait(timeout=30)
            files = await job.download(tmp_path)
            listed = [j.id async for j in client.jobs.list(limit=1)]
            assert listed == [job.id]
            with pytest.raises(errors.NotFound):
                await client.jobs.retrieve("job_test_nope")
            return files

    files = run_async(flow())
    assert sorted(files) == ["instrumental", "vocals"]
    assert all(path.stat().st_size > 1000 for path in files.values())


def test_the_key_and_url_come_from_the_environment(monkeypatch, live_server, test_key):
    monkeypatch.setenv("BTRO_API_KEY", test_key)
    monkeypatch.setenv("BTRO_BASE_URL", live_server.url)
    with Client() as client:
        assert client.balance().livemode is False
    monkeypatch.delenv("BTRO_API_KEY")
    with pytest.raises(errors.AuthenticationError):
        Client()
