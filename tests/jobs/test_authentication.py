import pytest

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def assert_401(response):
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["request_id"] == response["Request-Id"]


def test_a_request_without_a_key_is_401():
    assert_401(client_for(None).get("/v1/jobs"))


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Basic dXNlcjpwYXNz", "Bearer sk_test_short", "Bearer a b", "Token sk_test_x"],
)
def test_a_malformed_authorization_header_is_401(header):
    assert_401(client_for(None).get("/v1/jobs", HTTP_AUTHORIZATION=header))


def test_an_unknown_but_well_formed_key_is_401(user):
    key, secret = api_key_create(user=user, mode="test")
    ApiKey.objects.filter(pk=key.pk).delete()
    assert_401(client_for(secret).get("/v1/jobs"))


def test_a_revoked_key_is_401_on_its_next_request(user):
    key, secret = api_key_create(user=user, mode="test")
    assert client_for(secret).get("/v1/jobs").status_code == 200
    api_key_revoke(key=key)
    assert_401(client_for(secret).get("/v1/jobs"))


def test_using_a_key_records_when_it_was_last_used(user):
    key, secret = api_key_create(user=user, mode="test")
    client_for(secret).get("/v1/jobs")
    key.refresh_from_db()
    assert key.last_used_at is not None
