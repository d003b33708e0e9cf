from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils import timezone

from btro.errors import CATALOGUE
from tests.conftest import MULTIPART_BOUNDARY, multipart_body, upload

pytestmark = pytest.mark.django_db


def envelope(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["request_id"] == response["Request-Id"]
    # The code names one catalogue entry of this status.
    assert error["code"] in {e.code for e in CATALOGUE if e.status == status}, error
    return error


def test_an_unknown_api_path_is_404_in_the_envelope():
    error = envelope(Client().get("/v1/nothing-here"), 404)
    assert error["type"] == "invalid_request_error"


def test_a_wrong_method_is_405_in_the_envelope(api):
    envelope(api.delete("/v1/jobs"), 405)


def test_an_unexpected_server_error_is_500_api_error(api, monkeypatch):
    from jobs import selectors

    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "job_list", boom)
    api.raise_request_exception = False  # got_request_exception fired: see the 500 anyway
    error = envelope(api.get("/v1/jobs"), 500)
    assert error["type"] == "api_error"
    assert "fire" not in error["message"]


def test_django_raises_413_for_an_oversized_non_file_body(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post("/v1/jobs", {"tier": "x" * 1000}, format="multipart")
    assert envelope(response, 413)["type"] == "invalid_request_error"


def test_every_response_carries_a_request_id(api):
    assert api.get("/v1/jobs")["Request-Id"].startswith("req_")
    assert Client().get("/")["Request-Id"].startswith("req_")


def test_polling_one_job_quickly_meets_a_429_with_retry_after(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    with time_machine.travel(timezone.now(), tick=False):
        statuses = [api.get(f"/v1/jobs/{job['id']}").status_code for _ in range(8)]
        assert statuses.count(200) >= 3 and 429 in statuses
        limited = api.get(f"/v1/jobs/{job['id']}")
        error = envelope(limited, 429)
        assert error["type"] == "rate_limit_exceeded"
        assert 1 <= int(limited["Retry-After"]) <= 6


def test_polling_about_every_2_seconds_is_never_limited_even_with_jitter(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(20):
            assert api.get(f"/v1/jobs/{job['id']}").status_code in (200, 410)
            clock.shift(timedelta(seconds=1.9))  # a little early, as real clients are


def test_creating_jobs_has_its_own_per_key_limit(api, settings):
    settings.BTRO_RATE_CREATE = "2/m"
    codes = [
        api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]


# Malformed requests: each is the client's fault, so a 4xx in the envelope, never a 500.


def post_multipart(api, body: bytes, **extra):
    content_type = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
    return api.post("/v1/jobs", data=body, content_type=content_type, **extra)


@pytest.mark.parametrize("body", [b"[1,2]", b'{"tier":["pro"]}', b'{"tier":"pro"}', b"null"])
def test_a_json_body_is_415_asking_for_multipart(api, body):
    error = envelope(api.post("/v1/jobs", data=body, content_type="application/json"), 415)
    assert "multipart/form-data" in error["message"]
    assert "application/x-www-form-urlencoded" in error["message"]
    assert "application/json" in error["message"]


def test_a_form_encoded_body_without_file_url_names_the_missing_file(api):
    response = api.post(
        "/v1/jobs", data="tier=pro", content_type="application/x-www-form-urlencoded"
    )
    assert envelope(response, 400)["param"] == "file"


def test_a_body_without_a_content_type_is_415(api):
    response = api.generic("POST", "/v1/jobs", b"tier=pro", content_type="")
    assert "multipart/form-data" in envelope(response, 415)["message"]


def test_an_empty_post_still_names_the_missing_parameter(api):
    error = envelope(api.post("/v1/jobs"), 400)
    assert error["param"] == "tier"


def test_more_form_fields_than_django_allows_is_a_400_naming_the_limit(api, settings):
    fields = [(f"f{i}", None, b"1") for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 5)]
    error = envelope(post_multipart(api, multipart_body(*fields)), 400)
    assert "fields" in error["message"]
    assert str(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS) in error["message"]


def test_more_file_parts_than_django_allows_is_a_400_naming_the_limit(api, settings):
    files = [("file", f"{i}.wav", b"x") for i in range(110)]
    error = envelope(post_multipart(api, multipart_body(("tier", None, b"pro"), *files)), 400)
    assert "files" in error["message"]
    assert str(settings.DATA_UPLOAD_MAX_NUMBER_FILES) in error["message"]


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", " "])
def test_a_content_length_that_is_not_a_number_of_bytes_is_400(api, length):
    body = multipart_body(("tier", None, b"pro"), ("file", "a.wav", b"x"))
    error = envelope(post_multipart(api, body, CONTENT_LENGTH=length), 400)
    assert "Content-Length" in error["message"]


def test_a_chunked_body_is_411_length_required(api):
    # As gunicorn hands it on: the body dechunked and no CONTENT_LENGTH at all.
    response = api.generic(
        "POST",
        "/v1/jobs",
        content_type=f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    error = envelope(response, 411)
    assert "Content-Length" in error["message"]


def test_a_chunked_body_is_411_even_beside_a_content_length(api):
    body = multipart_body(("tier", None, b"pro"), ("file", "a.wav", b"x"))
    envelope(post_multipart(api, body, HTTP_TRANSFER_ENCODING="chunked"), 411)


@pytest.mark.parametrize("filename", ["..", ".", "../", "a/..", "..\\", "&#46;&#46;"])
def test_a_file_part_named_dot_or_dot_dot_says_what_is_wrong_with_the_name(api, filename):
    # More than Django's 1 KiB of part headers follows, which used to read as headers.
    body = multipart_body(("tier", None, b"pro"), ("file", filename, b"x" * 4096))
    error = envelope(post_multipart(api, body), 400)
    assert error["param"] == "file"
    assert "file name" in error["message"]


def test_oversized_part_headers_are_a_400_that_says_so(api):
    header = f'Content-Disposition: form-data; name="tier"\r\nX: {"a" * 2000}'
    part = f"--{MULTIPART_BOUNDARY}\r\n{header}"
    body = (part + f"\r\n\r\npro\r\n--{MULTIPART_BOUNDARY}--\r\n").encode()
    error = envelope(post_multipart(api, body), 400)
    assert "header" in error["message"]


def test_a_header_holding_a_nul_byte_is_a_400_before_any_view_runs(api):
    response = api.post(
        "/v1/jobs",
        {"file": upload(), "tier": "pro"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="k\x00",
    )
    assert "NUL" in envelope(response, 400)["message"]


def test_the_creation_limit_speaks_of_creating_jobs_not_polling(api, settings):
    settings.BTRO_RATE_CREATE = "1/m"
    api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart")
    limited = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart")
    message = envelope(limited, 429)["message"]
    assert "creat" in message and "poll" not in message
    assert int(limited["Retry-After"]) >= 1


def test_the_read_limit_speaks_of_requests_with_this_key_not_polling(api, settings):
    settings.BTRO_RATE_READ = "1/m"
    api.get("/v1/jobs")
    limited = api.get("/v1/jobs")
    message = envelope(limited, 429)["message"]
    assert "key" in message and "poll" not in message


def test_the_poll_limit_still_says_how_often_to_poll(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    with time_machine.travel(timezone.now(), tick=False):
        responses = [api.get(f"/v1/jobs/{job['id']}") for _ in range(8)]
    assert "every 2 to 5 seconds" in envelope(responses[-1], 429)["message"]


# Stem downloads: GET and HEAD only, and every other method answered in the envelope.


@pytest.fixture
def stem_url(api):
    with time_machine.travel(timezone.now() - timedelta(seconds=10), tick=False):
        job = api.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart")
    return api.get(f"/v1/jobs/{job.json()['id']}").json()["result"]["stems"]["vocals"]["url"]


def test_head_on_a_stem_answers_what_get_would_without_the_body(stem_url):
    get, head = Client().get(stem_url), Client().head(stem_url)
    assert head.status_code == get.status_code == 200
    for name in ("Content-Length", "Content-Type", "Accept-Ranges", "Content-Disposition"):
        assert head[name] == get[name], name
    assert int(head["Content-Length"]) > 1000
    assert head["Request-Id"].startswith("req_")
    # The test client drops HEAD bodies itself; the view, called directly, sends none.
    match = resolve(urlsplit(stem_url).path)
    raw = match.func(RequestFactory().head(stem_url), **match.kwargs)
    assert b"".join(raw.streaming_content) == b""


def test_head_on_a_stem_range_answers_206_with_its_content_range(stem_url):
    head = Client().head(stem_url, HTTP_RANGE="bytes=0-99")
    assert head.status_code == 206
    assert head["Content-Length"] == "100" and head["Content-Range"].startswith("bytes 0-99/")


def test_head_on_a_missing_or_expired_stem_is_404_or_410_like_get(stem_url):
    wrong = stem_url.replace("/vocals.", "/drums.")
    assert Client().head(wrong).status_code == Client().get(wrong).status_code == 404
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert Client().head(stem_url).status_code == Client().get(stem_url).status_code == 410


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"])
def test_other_methods_on_a_stem_are_405_in_the_envelope_not_the_csrf_page(stem_url, method):
    client = Client(enforce_csrf_checks=True, headers={"Accept": "text/html"})
    client.get("/login/")  # a CSRF cookie, as a browser that visited the dashboard has
    response = client.generic(method, stem_url)
    error = envelope(response, 405)
    assert "GET or HEAD" in error["message"]
    assert response["Allow"] == "GET, HEAD"
