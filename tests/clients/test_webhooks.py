"""webhooks.construct_event: BTRO-Signature checked against the raw body, secret and clock."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from btro_sdk import SignatureVerificationError, webhooks

SECRET = "whsec_test_secret"
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "job.succeeded"}).encode()


def header(body: bytes = BODY, secret: str = SECRET, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_a_good_signature_gives_the_event():
    event = webhooks.construct_event(BODY, header(), SECRET)
    assert event.id == "evt_1" and event.type == "job.succeeded"
    assert webhooks.construct_event(BODY.decode(), header(), SECRET)["object"] == "event"


def test_sign_writes_what_verify_reads():
    assert webhooks.sign(BODY, SECRET, timestamp=1700000000) == header(t=1700000000)


def test_one_matching_signature_among_several_is_enough_as_while_a_secret_rolls():
    old = header(secret="whsec_old").split(",")[1]
    assert webhooks.construct_event(BODY, f"{header()},{old}", SECRET).id == "evt_1"


@pytest.mark.parametrize(
    "body, signature, secret",
    [
        (BODY.replace(b"succeeded", b"failed"), header(), SECRET),  # tampered body
        (BODY, header(), "whsec_other"),  # another secret
        (BODY, header().replace("v1=", "v0="), SECRET),  # no v1
        (BODY, "", SECRET),
        (BODY, "garbage", SECRET),
    ],
)
def test_a_tampered_or_malformed_signature_is_refused(body, signature, secret):
    with pytest.raises(SignatureVerificationError):
        webhooks.construct_event(body, signature, secret)


def test_a_stale_signature_is_refused_unless_the_tolerance_allows_it():
    old = int(time.time()) - 301
    with pytest.raises(SignatureVerificationError, match="300 s"):
        webhooks.construct_event(BODY, header(t=old), SECRET)
    assert webhooks.construct_event(BODY, header(t=old), SECRET, tolerance=600).id == "evt_1"
    with pytest.raises(SignatureVerificationError):  # from the future, too
        webhooks.construct_event(BODY, header(t=int(time.time()) + 400), SECRET)
