"""API key material: generation, the cheap format check, digests and masks.

A key reads `sk_<mode>_<32 base62 random><6 base62 checksum>`. The checksum lets us refuse a
mistyped or truncated key before any database query, and lets secret scanners tell our
keys from random strings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
MODES = ("test", "live")
_BODY_LENGTH = 32
_CHECK_LENGTH = 6
_KEY_RE = re.compile(r"^sk_(test|live)_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$")


def _base62(number: int, length: int) -> str:
    out = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        out.append(BASE62[digit])
    return "".join(reversed(out))


def _checksum(prefix_and_body: str) -> str:
    return _base62(zlib.crc32(prefix_and_body.encode()), _CHECK_LENGTH)


def key_generate(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    body = "".join(secrets.choice(BASE62) for _ in range(_BODY_LENGTH))
    head = f"sk_{mode}_{body}"
    return head + _checksum(head)


def key_mode(key: str) -> str | None:
    """The key's mode if it is well formed (format and checksum), else None."""
    match = _KEY_RE.match(key)
    if not match:
        return None
    head = key[:-_CHECK_LENGTH]
    if not hmac.compare_digest(_checksum(head), match.group(3)):
        return None
    return match.group(1)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_mask(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}"
