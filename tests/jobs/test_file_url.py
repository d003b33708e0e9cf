"""Input by URL: POST /v1/jobs with file_url, fetched by the worker from a real HTTP server on
loopback, through the outbound guard, within the size and time limits."""

import threading
import time
from urllib.parse import urlencode

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from accounts.models import CreditEntry
from accounts.selectors import credit_balance
from btro import outbound
from jobs.models import Job
from jobs.services import job_cost, job_run, job_sweep
from tests.conftest import run_all, upload, wav_bytes
from tests.file_server import serving

pytestmark = pytest.mark.django_db(transaction=True)
LONG = wav_bytes(seconds=130, sample_rate=8000, channels=1)  # 2 min 10 s in 4 MB


@pytest.fixture(autouse=True)
def _fast_and_private(settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    settings.BTRO_FETCH_ALLOW_PRIVATE = True  # the file server is on loopback


@pytest.fixture
def server():
    with serving() as running:
        yield running


def create(client, file_url, tier="pro", **extra):
    return client.post(
        "/v1/jobs",
        urlencode({"tier": tier, "file_url": file_url}),
        content_type="application/x-www-form-urlencoded",
        **extra,
    )


def run(worker, job_id):
    run_all(worker)
    return Job.objects.get(pk=job_id)


def failed_with(worker, live_api, url):
    response = create(live_api, url)
    assert response.status_code == 201, response.content
    job = run(worker, response.json()["id"])
    assert job.status == "failed", job.result
    body = live_api.get(f"/v1/jobs/{job.id}").json()
    assert body["error"]["type"] == job.error_type
    return job


# Creating


def test_a_url_job_is_queued_named_after_the_url_and_charged_nothing_yet(live_api, user):
    before = credit_balance(user=user)
    response = create(live_api, "https://cdn.example.com/mixes/My%20Song.flac?sig=abc")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["filename"], body["progress"]) == ("queued", "My Song.flac", 0)
    job = Job.objects.get(pk=body["id"])
    assert job.source_url.endswith("My%20Song.flac?sig=abc") and job.input_name == ""
    assert credit_balance(user=user) == before


def test_file_url_also_travels_in_the_multipart_form(live_api):
    body = {"file_url": "http://example.com/", "tier": "basic"}
    response = live_api.post("/v1/jobs", body, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == "download"


@pytest.mark.parametrize(
    "data, param",
    [
        ({"tier": "pro"}, "file"),
        ({"tier": "pro", "file": True, "file_url": "https://example.com/a.wav"}, "file_url"),
        ({"tier": "pro", "file_url": "ftp://example.com/a.wav"}, "file_url"),
        ({"tier": "pro", "file_url": "file:///etc/passwd"}, "file_url"),
        ({"tier": "pro", "file_url": "https:///a.wav"}, "file_url"),
        ({"tier": "pro", "file_url": "https://user:pw@example.com/a.wav"}, "file_url"),
        ({"tier": "pro", "file_url": "https://example.com/" + "a" * 3000}, "file_url"),
        ({"tier": "pro", "file_url": "https://example.com:port/a.wav"}, "file_url"),
        ({"tier": "pro", "file_url": "https://example.com/a b.wav"}, "file_url"),
        ({"tier": "pro", "file_url": True}, "file_url"),  # a file part named file_url
        ({"tier": "pro", "file": "https://example.com/a.wav"}, "file"),  # a URL in file
    ],
)
def test_file_and_file_url_are_exactly_one_and_the_url_is_checked_for_form(
    live_api, api, data, param
):
    for client in (live_api, api):
        fresh = {name: upload() if value is True else value for name, value in data.items()}
        response = client.post("/v1/jobs", fresh, format="multipart")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_parameter", param)
        assert "file" in error["message"]
    assert not Job.objects.exists()


def test_a_json_body_is_still_415(live_api):
    body = b'{"tier": "pro", "file_url": "https://example.com/a.wav"}'
    response = live_api.post("/v1/jobs", body, content_type="application/json")
    assert response.status_code == 415


def test_a_balance_below_the_tiers_one_minute_price_is_402_at_creation(live_api, user):
    CreditEntry.objects.filter(user=user).delete()
    call_command("grant_credits", email=user.email, amount=job_cost(tier="studio", duration=0) - 1)
    response = create(live_api, "https://example.com/a.wav", tier="studio")
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "insufficient_credits"
    assert not Job.objects.exists()


def test_test_mode_accepts_file_url_without_fetching_it(api, server, worker):
    url = server.add("track.wav", wav_bytes())
    response = create(api, url)
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.result is not None and job.result["engine"] == "test"
    run_all(worker)
    assert server.requests == []


def test_an_idempotent_retry_replays_the_job_and_fetches_once(live_api, server, worker):
    url = server.add("track.wav", wav_bytes())
    first = create(live_api, url, HTTP_IDEMPOTENCY_KEY="pipeline-7")
    again = create(live_api, url, HTTP_IDEMPOTENCY_KEY="pipeline-7")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other = create(live_api, url + "?v=2", HTTP_IDEMPOTENCY_KEY="pipeline-7")
    assert other.json()["error"]["type"] == "idempotency_error"
    assert run(worker, first.json()["id"]).status == "succeeded"
    assert Job.objects.count() == 1 and server.requests == ["/files/track.wav"]


# Fetching


def test_a_url_job_is_fetched_separated_and_charged_by_the_audio_decoded(
    live_api, user, server, worker
):
    before = credit_balance(user=user)
    url = server.add("long.wav", LONG)
    job = run(worker, create(live_api, url).json()["id"])
    assert job.status == "succeeded", job.error_message
    assert job.input_name == f"uploads/{job.id}/input.wav" and default_storage.exists(
        job.input_name
    )
    assert job.duration == pytest.approx(130) and job.cost == job_cost(tier="pro", duration=130)
    assert credit_balance(user=user) == before - job.cost
    body = live_api.get(f"/v1/jobs/{job.id}").json()
    assert body["filename"] == "long.wav" and list(body["result"]["stems"]) == [
        "vocals",
        "drums",
        "bass",
        "other",
    ]
    assert body["result"]["stems"]["vocals"]["duration"] == 130.0
    Job.objects.filter(pk=job.id).update(expires_at=job.completed_at)
    job_sweep()  # the input is an upload like any other: purged with the job
    assert not default_storage.exists(job.input_name)


def test_three_redirects_are_followed_and_a_fourth_is_refused(live_api, server, worker):
    server.add("track.wav", wav_bytes())
    job = run(worker, create(live_api, server.url("/redirect/3/track.wav")).json()["id"])
    assert job.status == "succeeded", job.error_message
    job = failed_with(worker, live_api, server.url("/redirect/4/track.wav"))
    assert job.error_type == "fetch_error" and "redirected more than 3 times" in job.error_message
    assert "/files/track.wav" not in server.requests[-4:]


def test_a_404_fails_at_once_with_the_status(live_api, user, server, worker):
    before = credit_balance(user=user)
    job = failed_with(worker, live_api, server.url("/status/404"))
    assert (job.error_type, job.attempts) == ("fetch_error", 1)
    assert "HTTP 404 Not Found" in job.error_message
    assert server.requests == ["/status/404"] and credit_balance(user=user) == before
    assert not CreditEntry.objects.filter(job_id=job.id).exists()


def test_a_server_error_is_retried_then_fails_with_the_status(live_api, server, worker, settings):
    job = failed_with(worker, live_api, server.url("/status/503"))
    assert job.error_type == "fetch_error" and "HTTP 503" in job.error_message
    assert server.requests == ["/status/503"] * settings.BTRO_JOB_MAX_ATTEMPTS
    assert f"after {settings.BTRO_JOB_MAX_ATTEMPTS} tries" in job.error_message


def test_a_connection_dropped_mid_body_is_retried_and_the_job_succeeds(live_api, server, worker):
    server.add("track.wav", wav_bytes())
    job = run(worker, create(live_api, server.url("/flaky/track.wav")).json()["id"])
    assert (job.status, job.attempts) == ("succeeded", 2), job.error_message
    assert server.requests == ["/flaky/track.wav"] * 2
    assert default_storage.size(job.input_name) == len(server.files["track.wav"][0])


@pytest.mark.parametrize("mode", ["close", "chunked", "declared"])
def test_a_body_past_the_upload_limit_is_cut_off_while_streaming(
    live_api, server, worker, settings, mode
):
    settings.BTRO_MAX_UPLOAD_BYTES = 512 * 1024
    job = failed_with(worker, live_api, server.url(f"/endless/{mode}"))
    assert job.error_type == "fetch_error"
    assert "larger than the 512 KB upload limit" in job.error_message
    assert server.sent.get(f"/endless/{mode}", 0) < 64 * 2**20  # it stopped reading early
    assert not default_storage.exists(f"uploads/{job.id}")


def test_a_server_too_slow_to_finish_within_the_time_limit_is_given_up(
    live_api, server, worker, settings
):
    settings.BTRO_FETCH_TIME_LIMIT_SECONDS = 1
    server.add("track.wav", wav_bytes(seconds=5))  # 200 pieces, 50 ms apart: 10 s
    started = time.monotonic()
    job = failed_with(worker, live_api, server.url("/slow/track.wav"))
    assert time.monotonic() - started < 8
    assert job.error_type == "fetch_error" and "timed out" in job.error_message
    assert "1 s" in job.error_message and job.attempts == 1


def test_a_page_that_is_not_audio_fails_saying_so(live_api, server, worker):
    url = server.add("index.html", b"<!doctype html><h1>Sign in</h1>" * 50, "text/html")
    job = failed_with(worker, live_api, url)
    assert job.error_type == "fetch_error"
    assert job.error_message.startswith("The file at file_url (text/html) is not audio")


def test_an_unresolvable_host_fails_saying_so(live_api, worker, settings):
    settings.BTRO_JOB_MAX_ATTEMPTS = 1
    job = failed_with(worker, live_api, "http://no-such-host.invalid/a.wav")
    assert job.error_type == "fetch_error" and "resolve" in job.error_message


def test_credits_that_do_not_cover_the_decoded_audio_fail_the_job_and_charge_nothing(
    live_api, user, server, worker
):
    CreditEntry.objects.filter(user=user).delete()
    call_command("grant_credits", email=user.email, amount=job_cost(tier="pro", duration=60))
    before = list(CreditEntry.objects.values_list("id", "amount"))
    url = server.add("long.wav", LONG)
    job = failed_with(worker, live_api, url)
    assert job.error_type == "insufficient_credits"
    assert "130 s" in job.error_message and "Nothing was charged" in job.error_message
    assert list(CreditEntry.objects.values_list("id", "amount")) == before


def test_a_retry_after_a_crash_reuses_the_fetched_input(live_api, server, worker, settings):
    settings.BTRO_ENGINE = "tests.fake_engines:SuicidalEngine"
    url = server.add("track.wav", wav_bytes())
    job = run(worker, create(live_api, url).json()["id"])
    assert job.error_type == "engine_crashed" and job.attempts == settings.BTRO_JOB_MAX_ATTEMPTS
    assert server.requests == ["/files/track.wav"]


def test_a_job_fetching_keeps_its_heartbeat_and_shows_queued(live_api, server, settings):
    settings.BTRO_FETCH_TIME_LIMIT_SECONDS = 60
    settings.BTRO_RATE_POLL = "1000/m"
    server.add("track.wav", wav_bytes(seconds=2))  # served over 10 s
    job_id = create(live_api, server.url("/slow/track.wav")).json()["id"]
    thread = threading.Thread(target=job_run, kwargs={"job_id": job_id})
    thread.start()
    fetching = []  # what the API and the sweep see until the input is stored
    while thread.is_alive():
        job = Job.objects.get(pk=job_id)
        if not job.input_name:
            shown = live_api.get(f"/v1/jobs/{job_id}").json()
            fetching.append((shown["status"], shown["progress"], job.heartbeat_at))
        time.sleep(0.25)
    thread.join()
    assert {(status, progress) for status, progress, _ in fetching} == {("queued", 0)}
    beats = {beat for _, _, beat in fetching} - {None}
    assert len(beats) >= 2  # claimed, then a beat every 3 s while the bytes arrive
    assert Job.objects.get(pk=job_id).status == "succeeded"


# The outbound guard, as the worker uses it (allow_private off)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1", "192.168.1.1"]
)
def test_a_private_loopback_or_metadata_address_is_refused_without_a_request(
    live_api, server, worker, settings, host
):
    settings.BTRO_FETCH_ALLOW_PRIVATE = False
    server.add("track.wav", wav_bytes())
    job = failed_with(worker, live_api, f"http://{host}:{server.port}/files/track.wav")
    assert job.error_type == "fetch_error" and job.attempts == 1
    assert job.error_message.startswith("file_url was refused:")
    assert "private or reserved address" in job.error_message
    assert server.requests == []


def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(
    live_api, server, worker, settings, monkeypatch
):
    """127.0.0.2 stands for the public internet here: the guard lets it through, not 127.0.0.1."""
    settings.BTRO_FETCH_ALLOW_PRIVATE = False
    real = outbound._is_public
    monkeypatch.setattr(outbound, "_is_public", lambda a: a == "127.0.0.2" or real(a))
    target = server.add("track.wav", wav_bytes())
    with serving("127.0.0.2") as public:
        job = failed_with(worker, live_api, public.url(f"/to?url={target}"))
        assert public.requests == [f"/to?url={target}"]
    assert job.error_type == "fetch_error" and "127.0.0.1" in job.error_message
    assert "private or reserved address" in job.error_message
    assert server.requests == []


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/a.wav"])
def test_a_redirect_to_another_scheme_is_refused(live_api, server, worker, target):
    job = failed_with(worker, live_api, server.url(f"/to?url={target}"))
    assert job.error_type == "fetch_error" and job.attempts == 1
    assert job.error_message == (
        "file_url was refused: The URL must start with http:// or https://."
    )


# Documentation


def test_the_openapi_document_and_the_reference_describe_file_url(client):
    document = client.get("/v1/openapi.json").json()
    content = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    schemas = document["components"]["schemas"]
    for media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        name = content[media_type]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert "file_url" in schemas[name]["properties"]
        assert "file" not in schemas[name].get("required", [])
    page = client.get("/docs/").content.decode()
    assert "<code>file_url</code>" in page and "fetch_error" in page
