"""Strict parameters: on every /v1 route, an unknown parameter is a 400 naming it, and every
parameter the OpenAPI document lists is one the route accepts.

The routes come from the URL configuration, so a route added later is checked too.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from jobs.models import IdempotencyRecord, Job
from tests.conftest import MULTIPART_BOUNDARY, multipart_body, upload
from tests.security.test_hostile_requests import PLACEHOLDER, routes

pytestmark = pytest.mark.django_db
MULTIPART = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
FORM = "application/x-www-form-urlencoded"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
UNKNOWN = "Received unknown parameter"


@pytest.fixture
def setup(settings, test_key):
    for name in ("BTRO_RATE_POLL", "BTRO_RATE_READ", "BTRO_RATE_CREATE"):
        setattr(settings, name, "1000000/s")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {test_key}")
    with time_machine.travel(timezone.now() - timedelta(seconds=10), tick=False):
        job = client.post("/v1/jobs", {"file": upload(), "tier": "basic"}).json()
    stem_url = client.get(f"/v1/jobs/{job['id']}").json()["result"]["stems"]["vocals"]["url"]
    _, job_id, token, filename = stem_url.rsplit("/", 3)
    real = {"pk": job_id, "job_id": job_id, "token": token, "filename": filename}
    return client, real


def api_urls(real: dict[str, str]) -> list[str]:
    found = []
    for route in routes():
        if route.startswith("v1/"):
            fill = lambda m: quote(real.get(m.group(2), "x"), safe="")  # noqa: E731
            found.append("/" + PLACEHOLDER.sub(fill, route))
    return found


def names_unknown(response, name: str) -> bool:
    if response.status_code != 400:
        return False
    error = response.json()["error"]
    return error["param"] == name and error["message"].startswith(f"{UNKNOWN}: {name}")


def test_every_api_route_refuses_an_unknown_query_parameter_on_every_method(setup):
    client, real = setup
    failures, checked = [], 0
    for url in api_urls(real):
        for method in METHODS:
            response = client.generic(method, f"{url}?tierr=1")
            if response.status_code == 405:
                continue
            checked += 1
            if method == "HEAD":  # no body to name it
                ok = response.status_code == 400
            else:
                ok = names_unknown(response, "tierr")
            if not ok:
                failures.append(
                    f"{method} {url}: {response.status_code} {response.content[:150]!r}"
                )
    assert checked >= 12, checked
    assert not failures, "\n".join(failures)


def test_every_api_post_refuses_an_unknown_body_field_multipart_or_form(setup):
    client, real = setup
    failures, checked = [], 0
    for url in api_urls(real):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            bodies = [
                (multipart_body(("tierr", None, b"pro")), MULTIPART, "tierr"),
                (multipart_body(("sneaky", "a.wav", b"RIFF")), MULTIPART, "sneaky"),
                (b"tierr=pro", FORM, "tierr"),
            ]
            for data, content_type, name in bodies:
                response = client.generic(method, url, data, content_type)
                if response.status_code == 405:
                    break
                if response.status_code == 415 and content_type == FORM:
                    continue  # a multipart-only route: the multipart body was checked
                checked += 1
                if not names_unknown(response, name):
                    failures.append(f"{method} {url} {name}: {response.content[:150]!r}")
    assert checked >= 3, checked
    assert not failures, "\n".join(failures)


def test_a_typo_on_create_names_the_parameter_and_suggests_the_right_one(api):
    response = api.post("/v1/jobs", {"file": upload(), "tierr": "pro"}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == error | {"type": "invalid_parameter", "param": "tierr"}
    assert error["message"] == f"{UNKNOWN}: tierr. Did you mean tier?"
    assert not Job.objects.exists()


def test_a_file_url_misspelling_is_refused_and_the_real_names_are_accepted(api):
    typo = api.post("/v1/jobs", {"fileurl": "https://example.com/a.wav", "tier": "pro"})
    assert (
        names_unknown(typo, "fileurl")
        and "Did you mean file_url?" in typo.json()["error"]["message"]
    )
    for name in ("file_url", "webhook"):  # declared (built by their own features)
        fields = {"tier": "pro", name: "https://example.com/x"}
        assert UNKNOWN not in api.post("/v1/jobs", fields).content.decode()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/jobs?limitt=5", "limitt"),
        ("/v1/jobs?created[gt]=5", "created[gt]"),
        ("/v1/jobs?expand[]=data", "expand[]"),
        ("/v1/balance?currency=eur", "currency"),
        ("/v1/usage?startt=0", "startt"),
        ("/v1/openapi.json?lang=fr", "lang"),
    ],
)
def test_a_get_refuses_an_unknown_query_parameter(api, path, name):
    assert names_unknown(api.get(path), name)


def test_a_job_refuses_query_parameters(api):
    job = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart").json()
    assert names_unknown(api.get(f"/v1/jobs/{job['id']}?expand=result"), "expand")


def test_the_strict_check_comes_after_authentication(db):
    assert Client().get("/v1/jobs?tierr=1").status_code == 401


def test_a_stem_url_refuses_query_parameters_and_the_pages_add_none(api, client, user):
    client.force_login(user)
    with time_machine.travel(timezone.now() - timedelta(seconds=10), tick=False):
        job = api.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart")
    stem_url = api.get(f"/v1/jobs/{job.json()['id']}").json()["result"]["stems"]["vocals"]["url"]
    assert Client().get(stem_url).status_code == 200
    assert names_unknown(Client().get(f"{stem_url}?dl=1"), "dl")
    page = client.get(f"/jobs/{job.json()['id']}/").content.decode()
    path = stem_url.split("/v1/", 1)[1]
    assert re.findall(rf"/v1/{re.escape(path)}[^\"' ]*", page) and all(
        "?" not in found for found in re.findall(rf"/v1/{re.escape(path)}[^\"' ]*", page)
    )


def test_a_refused_parameter_is_not_stored_for_the_idempotency_key(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "retry-1"}
    typo = api.post("/v1/jobs", {"file": upload(), "tierr": "pro"}, format="multipart", **headers)
    assert names_unknown(typo, "tierr") and not IdempotencyRecord.objects.exists()
    fixed = api.post("/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart", **headers)
    assert fixed.status_code == 201


def _example(schema: dict, components: dict):
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "allOf" in schema:
        return _example(schema["allOf"][0], components)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "integer":
        return schema.get("minimum", 1)
    if schema.get("format") == "uri":
        return "https://example.com/a.wav"
    return "x"


def test_every_parameter_the_document_lists_is_one_the_route_accepts(setup, api):
    """The document and the strictness come from one declaration; this proves they agree."""
    client, real = setup
    schema = api.get("/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    checked: list[tuple[str, ...]] = []
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: real.get("pk", "x"), path)
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                value = _example(parameter["schema"], components)
                response = client.generic(method.upper(), f"{url}?{parameter['name']}={value}")
                checked.append((method, path, parameter["name"]))
                assert UNKNOWN not in response.content.decode(), (path, parameter)
            body = operation.get("requestBody", {}).get("content", {})
            for media_type, content in body.items():
                properties = _example_properties(content["schema"], components)
                for name, value in properties.items():
                    data: bytes | str
                    if media_type.startswith("multipart"):
                        data = multipart_body((name, None, str(value).encode()))
                        content_type = MULTIPART
                    else:
                        data, content_type = f"{quote(name)}={quote(str(value))}", media_type
                    response = client.generic(method.upper(), url, data, content_type)
                    checked.append((method, path, name, media_type))
                    assert UNKNOWN not in response.content.decode(), (path, name, media_type)
    names = {entry[2] for entry in checked}
    assert {"created[gte]", "created[lte]", "status", "tier", "limit", "start"} <= names
    assert {"metadata[key]", "file_url", "webhook", "format"} <= names


def _example_properties(schema: dict, components: dict) -> dict[str, object]:
    target = components[schema["$ref"].rsplit("/", 1)[1]]
    found: dict[str, object] = {}
    for name, prop in target.get("properties", {}).items():
        if prop.get("type") == "object":  # a map: Stripe's bracket form
            found[f"{name}[key]"] = "value"
        elif prop.get("format") != "binary":
            found[name] = _example(prop, components)
    return found
