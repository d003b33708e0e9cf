"""The SDK's exception classes are the server's catalogue, and every answer maps to its class."""

from __future__ import annotations

import json

import pytest
from btro_sdk import Client, errors

from btro.errors import CATALOGUE
from tests.conftest import wav_bytes


def test_the_sdk_has_one_class_per_error_type_of_the_servers_catalogue():
    server = [(cls.__name__, cls.status, cls.type, cls.code) for cls in CATALOGUE]
    sdk = [(cls.__name__, cls.status, cls.type, cls.code) for cls in errors.CATALOGUE]
    assert sdk == server, "Mirror btro/errors/__init__.py's CATALOGUE in btro_sdk/errors.py"
    assert all(issubclass(cls, errors.APIError) for cls in errors.CATALOGUE)


@pytest.mark.parametrize("server_class", CATALOGUE, ids=lambda cls: cls.__name__)
def test_every_error_answer_raises_its_own_class_by_its_code(loopback, server_class):
    from tests.clients.conftest import answer

    body = {"error": {"type": server_class.type, "code": server_class.code, "message": "m"}}
    server = loopback(lambda h, i: answer(h, server_class.status, json.dumps(body).encode()))
    client = Client(api_key="sk_test_x", base_url=server.url, max_retries=0)
    with pytest.raises(errors.APIError) as raised:
        client.jobs.retrieve("job_test_x")
    assert type(raised.value).__name__ == server_class.__name__
    assert raised.value.code == server_class.code


@pytest.mark.parametrize("server_class", CATALOGUE, ids=lambda cls: cls.__name__)
def test_an_answer_without_a_code_raises_by_status_and_type_with_message_param_and_request_id(
    loopback, server_class
):
    from tests.clients.conftest import answer

    envelope = {
        "error": {
            "type": server_class.type,
            "message": f"a {server_class.__name__}",
            "param": "tier",
            "request_id": "req_abc",
        }
    }
    server = loopback(lambda h, i: answer(h, server_class.status, json.dumps(envelope).encode()))
    client = Client(api_key="sk_test_x", base_url=server.url, max_retries=0)
    with pytest.raises(errors.APIError) as raised:
        client.jobs.retrieve("job_test_x")
    error = raised.value
    expected = errors.error_class(server_class.status, server_class.type)
    assert type(error) is expected
    # Unique (status, type) pairs name their own class; a shared pair, the first listed.
    twins = [c for c in CATALOGUE if (c.status, c.type) == (server_class.status, server_class.type)]
    assert expected.__name__ == twins[0].__name__
    assert (error.status, error.type, error.param) == (
        server_class.status,
        server_class.type,
        "tier",
    )
    assert error.message == f"a {server_class.__name__}" and error.request_id == "req_abc"
    assert "req_abc" in str(error)


def test_an_unknown_type_falls_back_by_status(loopback):
    from tests.clients.conftest import answer

    body = b'{"error": {"type": "brand_new_error", "message": "new", "request_id": "r"}}'
    server = loopback(lambda h, i: answer(h, 404, body))
    with pytest.raises(errors.NotFound) as raised:
        Client(api_key="sk_test_x", base_url=server.url).jobs.retrieve("x")
    assert raised.value.type == "brand_new_error"


@pytest.mark.django_db(transaction=True)
def test_the_real_servers_errors_arrive_as_their_classes(sdk, live_server):
    with pytest.raises(errors.NotFound) as missing:
        sdk.jobs.retrieve("job_test_doesnotexist")
    request_id = missing.value.request_id
    assert missing.value.status == 404 and request_id is not None and request_id.startswith("req_")
    with pytest.raises(errors.InvalidParameter) as invalid:
        sdk.jobs.create(wav_bytes(0.2), tier="platinum")
    assert invalid.value.param == "tier"
    with pytest.raises(errors.AuthenticationError):
        Client(api_key="sk_test_wrong", base_url=live_server.url).balance()
