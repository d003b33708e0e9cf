"""Webhook signatures: `BTRO-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from ._core import BtroObject
from .errors import SignatureVerificationError

HEADER = "BTRO-Signature"


def signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    body = payload.encode() if isinstance(payload, str) else payload
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The BTRO-Signature header for this body, as the API sends it."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(payload, secret, t)}"


def verify(payload: bytes | str, signature_header: str, secret: str, tolerance: int = 300) -> None:
    """Raise SignatureVerificationError unless one v1 signature matches and t is recent."""
    timestamp, signatures = None, []
    for part in (signature_header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureVerificationError(f"The {HEADER} header has no t=… and v1=… parts.")
    expected = signature(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise SignatureVerificationError("No signature matches the body and the secret.")
    if tolerance and abs(time.time() - timestamp) > tolerance:
        raise SignatureVerificationError(
            f"The signature's timestamp is more than {tolerance} s away from now."
        )


def construct_event(
    payload: bytes | str, signature_header: str, secret: str, tolerance: int = 300
) -> BtroObject:
    """The verified event: pass the raw body, before any JSON parsing touches it."""
    verify(payload, signature_header, secret, tolerance)
    try:
        event = json.loads(payload, object_hook=BtroObject)
    except ValueError as exc:
        raise SignatureVerificationError("The body is not JSON.") from exc
    if not isinstance(event, BtroObject):
        raise SignatureVerificationError("The body is not a JSON object.")
    return event
