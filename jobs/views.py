"""Stem downloads: plain URLs (an <audio> tag can play them) made unguessable by a token."""

from __future__ import annotations

import hmac
import io
import re

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt

from btro.errors import ApiError, Gone, MethodNotAllowed, NotFound, RangeNotSatisfiable
from btro.errors.handlers import error_response

from . import testmode
from .models import Job
from .parameters import refuse_unknown
from .selectors import job_is_expired, job_view
from .separation.audio import CONTENT_TYPES

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _not_found(request: HttpRequest) -> HttpResponse:
    return error_response(request, NotFound("No such file."))


def _open(request: HttpRequest, job: Job, stem: str):
    if request.method == "HEAD":  # GET's headers, and no byte read
        return io.BytesIO()
    return testmode.open_stem(job, stem)


def _stream(fh, start: int, length: int):
    with fh:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _without_body(response: HttpResponseBase) -> HttpResponseBase:
    """HEAD on an error: GET's status and headers, Content-Length included, and no body."""
    if isinstance(response, HttpResponse):
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


@csrf_exempt  # no cookie is read here: the token in the URL is the credential
def download(request: HttpRequest, job_id: str, token: str, filename: str) -> HttpResponseBase:
    if request.method not in ("GET", "HEAD"):
        message = f"Method {request.method} is not allowed on a result file: use GET or HEAD."
        return error_response(request, MethodNotAllowed(message, headers={"Allow": "GET, HEAD"}))
    response = _download(request, job_id, token, filename)
    return _without_body(response) if request.method == "HEAD" else response


def _download(request: HttpRequest, job_id: str, token: str, filename: str) -> HttpResponseBase:
    try:
        refuse_unknown(request.GET, None)  # a stem URL takes no query parameter, as all of /v1
    except ApiError as err:
        return error_response(request, err)
    stem, _, ext = filename.rpartition(".")
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not hmac.compare_digest(job.download_token.encode(), token.encode()):
        return _not_found(request)
    if job.deleted_at is not None:
        return error_response(request, Gone("This result was deleted with its job."))
    if job_is_expired(job=job):
        return error_response(request, Gone("This result has expired and was deleted."))
    result = job_view(job=job).result
    if not result or stem not in result["stems"] or ext != result["format"]:
        return _not_found(request)
    base = job.filename.rsplit(".", 1)[0] or "track"
    disposition = content_disposition_header(True, f"{base}-{stem}.{ext}") or "attachment"
    content_type = CONTENT_TYPES.get(ext, "application/octet-stream")
    signed = testmode.stem_signed_url(job, stem, content_type=content_type, disposition=disposition)
    if signed:  # stems in a bucket: the client fetches them there, never through this process
        redirect = HttpResponseRedirect(signed)
        redirect["Cache-Control"] = "no-store"  # the signature expires; ask here again
        return redirect
    size = testmode.stem_size(job, stem)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition,
        "Cache-Control": "private, max-age=3600",
    }
    match = _RANGE_RE.match(request.headers.get("Range", ""))
    if not match or not any(match.groups()):
        whole = FileResponse(_open(request, job, stem), content_type=content_type)
        for name, value in headers.items():  # after FileResponse's own Content-Disposition
            whole[name] = value
        whole["Content-Length"] = str(size)
        return whole
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # a suffix range: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start >= size or start > end:
        return error_response(request, RangeNotSatisfiable(size=size))
    length = end - start + 1
    response = StreamingHttpResponse(
        _stream(_open(request, job, stem), start, length),
        status=206,
        content_type=content_type,
        headers=headers,
    )
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    return response
