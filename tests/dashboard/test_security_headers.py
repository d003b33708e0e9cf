"""Headers that keep secrets out of caches and scripts out of pages: Cache-Control: no-store on
every dashboard page, and a Content-Security-Policy the templates can live with."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.urls import URLPattern, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiKey
from dashboard.urls import urlpatterns
from tests.conftest import client_for, upload
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db
SECRET_RE = re.compile(r"sk_(?:test|live)_[0-9A-Za-z]{38}")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def every_dashboard_url(user, job_id: str) -> list[str]:
    key = ApiKey.objects.filter(user=user).first()
    assert key is not None
    endpoint = endpoint_create(
        user=user, livemode=False, url="https://example.com/hook", enabled_events=["*"]
    )
    values = {
        "key_id": key.pk,
        "job_id": job_id,
        "endpoint_id": endpoint.pk,
        "delivery_id": 1,  # none: its page answers 404, no-store all the same
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    }
    urls = []
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: values[name] for name in pattern.pattern.converters}
        urls.append(reverse(f"dashboard:{pattern.name}", kwargs=kwargs))
    return urls


@pytest.fixture
def job_id(test_key) -> str:
    response = client_for(test_key).post(
        "/v1/jobs", {"file": upload(), "tier": "pro"}, format="multipart"
    )
    return response.json()["id"]


def assert_not_stored(response, url: str) -> None:
    assert "no-store" in response.get("Cache-Control", ""), (url, response.status_code)


def test_every_dashboard_page_is_sent_with_no_store_when_signed_in(browser_client, user, job_id):
    urls = every_dashboard_url(user, job_id)
    assert len(urls) == len(urlpatterns) > 15
    for url in urls:
        if url == reverse("dashboard:logout"):
            continue  # a GET would not sign out, but keep the session for the pages after it
        assert_not_stored(browser_client.get(url), url)


def test_every_dashboard_page_is_sent_with_no_store_when_signed_out(client, user, job_id):
    for url in every_dashboard_url(user, job_id):
        assert_not_stored(client.get(url), url)


def test_the_overview_showing_a_new_accounts_secret_is_not_stored(client):
    response = client.post(
        "/signup/", {"email": "new@example.com", "password": "a long passphrase 42"}
    )
    assert_not_stored(response, "/signup/")
    overview = client.get(response["Location"])
    assert SECRET_RE.search(overview.content.decode())
    assert_not_stored(overview, "/")


def test_the_keys_page_showing_a_new_secret_is_not_stored(browser_client):
    browser_client.post("/keys/create/", {"mode": "live", "name": "Prod"})
    page = browser_client.get("/keys/")
    assert SECRET_RE.search(page.content.decode())
    assert_not_stored(page, "/keys/")


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def test_dashboard_pages_carry_a_policy_that_allows_only_the_sites_own_scripts_and_styles(
    browser_client,
):
    for url in ["/", "/keys/", "/docs/", "/login/"]:
        csp = policy(browser_client.get(url))
        assert csp["default-src"] == ["'self'"]
        assert csp["script-src"] == ["'self'"]
        assert csp["style-src"] == ["'self'"]
        assert csp["object-src"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"]


def test_the_json_api_carries_a_policy_that_allows_nothing(api, job_id):
    urls = ["/v1/jobs", f"/v1/jobs/{job_id}", "/v1/nope", "/v1/openapi.json"]
    for response in [api.get(url) for url in urls]:
        assert policy(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}


INLINE = re.compile(
    r"""\sstyle\s*=|<style[\s>]|<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=|javascript:""",
    re.IGNORECASE,
)


def test_no_template_has_inline_scripts_styles_or_event_handlers():
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)!r}"
        for path in TEMPLATES.rglob("*.html")
        for match in INLINE.finditer(path.read_text())
    ]
    assert offenders == []
