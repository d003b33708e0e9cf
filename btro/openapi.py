"""drf-spectacular postprocessing hook: what the document needs beyond the DRF views.

- `servers`: the address the document was fetched from, so a generated client needs no base
  URL by hand (BTRO_PUBLIC_URL when the document is built offline, by `manage.py spectacular`);
- the stem download route `/v1/files/…`, a plain Django view (an <audio> tag plays it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .errors import described
from .errors.openapi import ERROR_REF, REQUEST_ID

AUDIO = {"schema": {"type": "string", "format": "binary"}}
# The formats of jobs/separation/audio.py::CONTENT_TYPES, and the fallback for any other.
AUDIO_TYPES = ("audio/wav", "audio/flac", "audio/mpeg", "application/octet-stream")
PATH_PART = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^/]+$"}


def _error(status: int) -> dict[str, Any]:
    return {
        "description": described(status),
        "headers": {"Request-Id": REQUEST_ID},
        "content": {"application/json": {"schema": ERROR_REF}},
    }


def _stem(description: str, extra_headers: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {
        "Content-Length": {"schema": {"type": "integer"}},
        "Accept-Ranges": {"schema": {"type": "string"}},
        **(extra_headers or {}),
    }
    return {
        "description": description,
        "headers": headers,
        "content": {content_type: AUDIO for content_type in AUDIO_TYPES},
    }


DOWNLOAD = {
    "operationId": "files_download",
    "summary": "Download a stem",
    "description": (
        "The URL of each stem in a job's `result`. The token in the path is the credential: "
        "no API key is needed, so an <audio> element or a plain download can use it. "
        "Supports `Range` (one range) and HEAD. Gone (410) once the job has expired."
    ),
    "tags": ["files"],
    "security": [],
    "parameters": [
        {"in": "path", "name": name, "required": True, "schema": PATH_PART}
        for name in ("job_id", "token", "filename")
    ]
    + [
        {
            "in": "header",
            "name": "Range",
            "required": False,
            "schema": {"type": "string", "pattern": "^bytes=[0-9]*-[0-9]*$"},
            "description": "One byte range, e.g. bytes=0-1023 or bytes=-1024.",
        }
    ],
    "responses": {
        "200": _stem("The whole stem."),
        "206": _stem("The requested range.", {"Content-Range": {"schema": {"type": "string"}}}),
        "404": _error(404),
        "410": _error(410),
        "416": _error(416),
    },
}


def openapi_servers_and_files(
    result: dict[str, Any], request=None, **kwargs: Any
) -> dict[str, Any]:
    base = request.build_absolute_uri("/") if request is not None else settings.BTRO_PUBLIC_URL
    result["servers"] = [{"url": base.rstrip("/"), "description": "This BTRO server"}]
    result.setdefault("paths", {})["/v1/files/{job_id}/{token}/{filename}"] = {"get": DOWNLOAD}
    return result
