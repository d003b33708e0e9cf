"""Hostile uploads: filenames built to escape or confuse, and small files claiming hours."""

from __future__ import annotations

import io
import re
import struct
import unicodedata
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pytest
import soundfile as sf
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from jobs.models import Job
from tests.conftest import wav_bytes

pytestmark = pytest.mark.django_db
BOUNDARY = "btro-hostile-boundary"

HOSTILE_NAMES = {
    "traversal": "../../../../etc/passwd.wav",
    "windows traversal": "..\\..\\Windows\\System32\\evil.wav",
    "absolute": "/var/lib/postgresql/data.wav",
    "encoded traversal": "%2e%2e%2f%2e%2e%2fetc%2fpasswd.wav",
    "entity traversal": "..&#x2F;..&#47;etc&#47;passwd.wav",
    "nul": "track.wav\x00.exe",
    "300 characters": "a" * 296 + ".wav",
    "right-to-left override": "\u202egnp.wav",
    "unicode": "música 🎵 トラック.wav",
    "control characters": "tab\there\x07bell\x1besc\x7f.wav",
    "quotes and semicolons": 'x"; filename="evil.sh',
    "dots": "....wav",
}


def multipart(disposition: bytes, data: bytes, tier: str = "basic") -> bytes:
    """A body built by hand: Django's test client would clean the filename before sending."""
    b = BOUNDARY.encode()
    return b"".join(
        [
            b"--" + b + b'\r\nContent-Disposition: form-data; name="tier"\r\n\r\n',
            tier.encode() + b"\r\n",
            b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; ' + disposition,
            b"\r\nContent-Type: audio/wav\r\n\r\n" + data + b"\r\n",
            b"--" + b + b"--\r\n",
        ]
    )


def post_named(api, name: str, data: bytes, encoding: str = "raw"):
    if encoding == "raw":  # what browsers do: UTF-8 bytes, quotes as %22
        disposition = b'filename="' + name.replace('"', "%22").encode("utf-8") + b'"'
    else:  # RFC 5987
        disposition = b"filename*=UTF-8''" + quote(name, safe="").encode()
    return api.post(
        "/v1/jobs",
        data=multipart(disposition, data),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def assert_safe_name(name: str) -> None:
    assert name and len(name) <= 255
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..")
    # No control characters, and no invisible formatting (bidi overrides) to spoof a name.
    assert not [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")], ascii(name)


_TOKEN = r"[!#$&+.^_`|~0-9A-Za-z-]"


def assert_well_formed_disposition(value: str) -> str:
    """The header is ASCII, one parameter, and its filename is safe. Returns the filename."""
    assert value.isascii() and not re.search(r"[\x00-\x1f\x7f]", value), ascii(value)
    plain = re.fullmatch(r'attachment; filename="((?:[^"\\]|\\.)*)"', value)
    encoded = r"attachment; filename\*=utf-8''((?:%[0-9A-F]{2}|" + _TOKEN + ")+)"
    extended = re.fullmatch(encoded, value)
    if plain:
        name = re.sub(r"\\(.)", r"\1", plain.group(1))
    else:
        assert extended, value
        name = unquote(extended.group(1))
    assert_safe_name(name)
    return name


# Every name as browsers send it, and the ones RFC 5987 encoding changes the meaning of.
ENCODED = [(case, "raw") for case in sorted(HOSTILE_NAMES)] + [
    (case, "rfc5987")
    for case in ("traversal", "nul", "right-to-left override", "unicode", "quotes and semicolons")
]


@pytest.mark.parametrize(("case", "encoding"), ENCODED)
def test_a_hostile_filename_makes_a_job_with_a_safe_name_and_download(api, case, encoding):
    name = HOSTILE_NAMES[case]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        response = post_named(api, name, wav_bytes(0.5))
        assert response.status_code == 201, response.content
        job = response.json()
        assert_safe_name(job["filename"])
        clock.shift(timedelta(seconds=3))
        url = api.get(f"/v1/jobs/{job['id']}").json()["result"]["stems"]["vocals"]["url"]
        download = api.get(url)
    assert download.status_code == 200
    shown = assert_well_formed_disposition(download["Content-Disposition"])
    assert shown.endswith("-vocals.wav")


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_a_live_jobs_stored_input_stays_inside_media_root(live_api, case, settings):
    response = post_named(live_api, HOSTILE_NAMES[case], wav_bytes(0.5))
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    root = Path(settings.MEDIA_ROOT).resolve()
    stored = (root / job.input_name).resolve()
    assert stored.is_relative_to(root / "uploads" / job.id), job.input_name
    assert stored.is_file() and stored.read_bytes() == wav_bytes(0.5)
    assert_safe_name(stored.name)


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_a_file_part_with_no_usable_name_is_a_400_not_a_crash(api, name):
    response = post_named(api, name, wav_bytes(0.5))
    assert response.status_code in (201, 400), response.content
    if response.status_code == 201:
        assert_safe_name(response.json()["filename"])
    else:  # Django drops such a part; "." and ".." then fail the form parse itself
        assert response.json()["error"]["type"] == "invalid_parameter"


# Small files that claim hours ---------------------------------------------------------


def _tone(seconds: float, rate: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _encoded(fmt: str, seconds: float = 1.0, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _tone(seconds), 44100, format=fmt, subtype=subtype)
    return buf.getvalue()


def wav_with_huge_data_chunk() -> bytes:
    data = bytearray(_encoded("WAV", subtype="PCM_16"))
    at = data.find(b"data") + 4
    data[at : at + 4] = struct.pack("<I", 0xFFFFFF00)
    data[4:8] = struct.pack("<I", 0xFFFFFFF0)
    return bytes(data)


def wav_at_one_hertz() -> bytes:
    """44 100 frames said to play at 1 Hz: 12 hours of 'audio' in 88 kB."""
    data = bytearray(_encoded("WAV", subtype="PCM_16"))
    data[24:28] = struct.pack("<I", 1)
    data[28:32] = struct.pack("<I", 2)  # byte rate = 1 Hz * 2 bytes
    return bytes(data)


def mp3_with_lying_xing_header() -> bytes:
    data = bytearray(_encoded("MP3", 1.0))
    at = data.find(b"Xing")
    assert at > 0, "libsndfile's MP3 writer stopped writing a Xing header"
    flags = struct.unpack(">I", data[at + 4 : at + 8])[0]
    assert flags & 1
    data[at + 8 : at + 12] = struct.pack(">I", 10_000_000)  # 10 M frames: 72 hours
    return bytes(data)


def flac_with_lying_streaminfo() -> bytes:
    data = bytearray(_encoded("FLAC", subtype="PCM_16"))
    # STREAMINFO: 18 bytes in, 20 bits rate, 3 channels, 5 bits per sample, 36 total samples.
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (44100 * 3600 * 10)  # ten hours
    data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def ogg_with_lying_granule() -> bytes:
    data = bytearray(_encoded("OGG", 1.0, "VORBIS"))
    last = data.rfind(b"OggS")
    data[last + 6 : last + 14] = struct.pack("<Q", 44100 * 3600 * 10)
    return bytes(data)


LIARS = {
    "wav data chunk": wav_with_huge_data_chunk,
    "wav at 1 Hz": wav_at_one_hertz,
    "mp3 xing frames": mp3_with_lying_xing_header,
    "flac total samples": flac_with_lying_streaminfo,
    "ogg granule": ogg_with_lying_granule,
}


@pytest.mark.parametrize("case", sorted(LIARS))
def test_a_small_file_claiming_hours_is_refused_or_measured_honestly(live_api, case):
    data = LIARS[case]()
    assert len(data) < 200_000
    response = live_api.post(
        "/v1/jobs", {"file": io.BytesIO(data), "tier": "basic"}, format="multipart"
    )
    if response.status_code == 400:
        assert response.json()["error"]["param"] == "file"
        assert not Job.objects.exists()
        return
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    # Never trusted into a long job: what was measured is what the bytes hold, and so is the cost.
    assert job.duration <= 1.1, (case, job.duration)
    assert job.cost == django_settings.BTRO_CREDITS_PER_MINUTE["basic"]
