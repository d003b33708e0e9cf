"""Every route, signed in and out, with hostile ids, parameters, bodies and methods: no 5xx.

The routes come from the URL configuration itself, so a route added later is walked too. The
suite runs on SQLite by default and on PostgreSQL when DATABASE_URL names it (as CI does);
PostgreSQL refuses a NUL in a string, so the NUL cases there are the ones that matter most.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.services import api_key_create, user_signup
from tests.conftest import MULTIPART_BOUNDARY, multipart_body, upload
from tests.services import require_postgres

pytestmark = pytest.mark.django_db

HOSTILE_SEGMENTS = [
    "\x00",
    "job_\x00abc",
    "job_test_\x00",
    "a" * 3000,
    "..",
    ".",
    "...",
    "música 🎵 トラック",
    "\u202e\ufeff",
    "' OR 1=1 --",
    "-1",
    "99999999999999999999",
    "%00",
]
HOSTILE_VALUES = ["\x00", "-1", "0", "abc", "1e9", "99999999999999999999", "a" * 3000]
HOSTILE_VALUES += ["música", "../..", "", "[]", "job_\x00", "%ff%fe", "\u202e\ufeff"]
QUERY_NAMES = ["limit", "starting_after", "ending_before", "page", "status", "tier", "mode"]
QUERY_NAMES += ["livemode", "type", "format", "next", "email", "q"]
ODD_METHODS = ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]


MULTIPART = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
HOSTILE_BODIES = {
    "json list": {"data": b"[1,2]", "content_type": "application/json"},
    "json list field": {"data": b'{"tier":["pro"]}', "content_type": "application/json"},
    "broken json": {"data": b'{"tier":', "content_type": "application/json"},
    "form with a NUL": {
        "data": b"tier=%00&email=a%00@b.c&password=%00&mode=%00&name=%00",
        "content_type": "application/x-www-form-urlencoded",
    },
    "1,100 form fields": {
        "data": "&".join(f"f{i}=1" for i in range(1100)).encode(),
        "content_type": "application/x-www-form-urlencoded",
    },
    "1,100 multipart fields": {
        "data": multipart_body(*[(f"f{i}", None, b"1") for i in range(1100)]),
        "content_type": MULTIPART,
    },
    "110 file parts": {
        "data": multipart_body(*[("file", f"{i}.wav", b"x") for i in range(110)]),
        "content_type": MULTIPART,
    },
    "a file named ..": {
        "data": multipart_body(("tier", None, b"pro"), ("file", "..", b"x" * 4096)),
        "content_type": MULTIPART,
    },
    "multipart without a boundary": {"data": b"x", "content_type": "multipart/form-data"},
    "Content-Length abc": {
        "data": multipart_body(("tier", None, b"pro")),
        "content_type": MULTIPART,
        "CONTENT_LENGTH": "abc",
    },
    "chunked": {"content_type": MULTIPART, "HTTP_TRANSFER_ENCODING": "chunked"},
}


def routes(patterns=None, prefix: str = "") -> list[str]:
    """Every route of the URL configuration, placeholders left in: `v1/jobs/<id:pk>`."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


PLACEHOLDER = re.compile(r"<(?:(\w+):)?(\w+)>")


class Walk:
    """Sends the requests, as a signed-in user (session and API key) or a stranger."""

    def __init__(self, signed_in: bool, user, secret: str, real: dict[str, str]) -> None:
        self.signed_in, self.user, self.real = signed_in, user, real
        headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if signed_in else {}
        self.client = Client(raise_request_exception=False, **headers)
        if signed_in:
            self.client.force_login(user)
        self.failures: list[str] = []
        self.count = 0

    def url(self, route: str, hostile: tuple[str, str] | None = None) -> str:
        """The route with real values, or with one placeholder replaced by a hostile one."""

        def fill(match: re.Match) -> str:
            name = match.group(2)
            if hostile and hostile[0] == name:
                return quote(hostile[1], safe="")
            return quote(self.real.get(name, "x"), safe="")

        return "/" + PLACEHOLDER.sub(fill, route).lstrip("^").rstrip("$")

    def check(self) -> None:
        if self.failures:
            pytest.fail(f"{len(self.failures)} of {self.count}:\n" + "\n".join(self.failures))

    def send(self, method: str, url: str, **kwargs) -> None:
        response = self.client.generic(method, url, **kwargs)
        if self.signed_in and "logout" in url:  # the rest of the walk stays signed in
            self.client.force_login(self.user)
        self.count += 1
        where = f"{method} {url[:120]!r} {sorted(k for k in kwargs if k != 'data')}"
        if response.status_code >= 500:
            self.failures.append(f"{where}: {response.status_code} {response.content[:200]!r}")
        elif "Request-Id" not in response:
            self.failures.append(f"{where}: no Request-Id")
        elif url.startswith("/v1/") and response.status_code >= 400 and method != "HEAD":
            if not response.get("Content-Type", "").startswith("application/json"):
                self.failures.append(f"{where}: {response.status_code} outside the envelope")
            elif response.json()["error"]["request_id"] != response["Request-Id"] and (
                "Idempotent-Replayed" not in response  # a replay is the first answer's body
            ):
                self.failures.append(f"{where}: the envelope's request_id is not the header's")


@pytest.fixture
def walk_setup(settings, db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for name in ("BTRO_RATE_POLL", "BTRO_RATE_READ", "BTRO_RATE_CREATE", "BTRO_RATE_WRITE"):
        setattr(settings, name, "1000000/s")
    user = user_signup(email="walker@example.com", password="a long passphrase 42")[0]
    secret = api_key_create(user=user, mode="test", name="walk")[1]
    spare_key = api_key_create(user=user, mode="test", name="spare")[0]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    with time_machine.travel(timezone.now() - timedelta(seconds=10), tick=False):
        job = client.post("/v1/jobs", {"file": upload(), "tier": "basic"}).json()
    stem_url = client.get(f"/v1/jobs/{job['id']}").json()["result"]["stems"]["vocals"]["url"]
    _, job_id, token, filename = stem_url.rsplit("/", 3)
    real = {"pk": job_id, "job_id": job_id, "token": token, "filename": filename}
    real |= {"key_id": str(spare_key.pk), "uidb64": "MQ", "path": "app.css"}
    return user, secret, real


@pytest.fixture(params=["signed in", "signed out"])
def walk(request, walk_setup) -> Walk:
    return Walk(request.param == "signed in", *walk_setup)


def test_the_walk_knows_the_api_and_dashboard_routes():
    found = routes()
    for route in ("v1/jobs", "v1/jobs/<", "v1/files/<", "jobs/<", "keys/<", "login/", "try/"):
        assert any(r.startswith(route) for r in found), route


def test_no_route_answers_a_hostile_path_segment_with_a_server_error(walk):
    for route in routes():
        names = [m.group(2) for m in PLACEHOLDER.finditer(route)]
        for name in names:
            for value in HOSTILE_SEGMENTS:
                walk.send("GET", walk.url(route, (name, value)))
            for method in ODD_METHODS:
                walk.send(method, walk.url(route, (name, "job_\x00abc")))
        if not names:
            walk.send("GET", walk.url(route) + "/%00/..")
    walk.check()


def test_no_route_answers_hostile_query_parameters_with_a_server_error(walk):
    queries = [
        "&".join(f"{name}={quote(value)}" for name in QUERY_NAMES) for value in HOSTILE_VALUES
    ]
    queries.append("&".join(f"a{i}=1" for i in range(1100)))
    queries.append("%ff%fe=%ff&limit=%ff")
    for route in routes():
        url = walk.url(route)
        for query in queries:
            walk.send("GET", f"{url}?{query}")
        for method in ODD_METHODS:
            walk.send(method, url)
    walk.check()


def test_no_route_answers_a_hostile_body_with_a_server_error(walk):
    for route in routes():
        url = walk.url(route)
        for method in ("POST", "PUT"):
            for body in HOSTILE_BODIES.values():
                walk.send(method, url, **body)
    walk.check()


HOSTILE_HEADERS = {
    "HTTP_AUTHORIZATION": ["Bearer \x00", "Bearer sk_test_\x00", "Bearer " + "a" * 5000, "Bearer"],
    "HTTP_IDEMPOTENCY_KEY": ["\x00", "key\x00", "a" * 300, "m\xfasica", " "],
    "HTTP_RANGE": ["bytes=\x00-", "bytes=99999999999999999999-", "bytes=5-1", "bytes=-0"],
    "HTTP_ACCEPT": ["\x00", "application/xml", "text/html", "*/*;q=abc"],
    "HTTP_ACCEPT_LANGUAGE": ["\x00", "x" * 3000],
    "HTTP_HOST": ["\x00", "evil.example.com"],
}


def test_no_route_answers_hostile_headers_with_a_server_error(walk):
    body = multipart_body(("tier", None, b"basic"), ("file", "a.wav", b"RIFF"))
    for route in routes():
        url = walk.url(route)
        for name, values in HOSTILE_HEADERS.items():
            if name == "HTTP_AUTHORIZATION" and not url.startswith("/v1/"):
                continue
            for value in values:
                walk.send("GET", url, **{name: value})
                walk.send("POST", url, data=body, content_type=MULTIPART, **{name: value})
    walk.check()


@pytest.mark.parametrize(
    "url",
    [
        "/v1/jobs/job_%00abc",
        "/v1/files/job_%00x/t/vocals.wav",
        "/jobs/job_%00/",
        "/jobs/job_%00/poll/",
    ],
)
def test_a_nul_in_an_id_is_a_404_on_postgresql(url, walk_setup):
    require_postgres()
    user, secret, _ = walk_setup
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.force_login(user)
    assert client.get(url).status_code == 404


def test_an_empty_signup_post_past_the_limit_is_a_429_not_a_500(db, settings):
    settings.BTRO_RATE_SIGNUP_IP = "2/h"
    client = Client(raise_request_exception=False)
    assert [client.post("/signup/").status_code for _ in range(3)] == [200, 200, 429]
