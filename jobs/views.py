"""Stem downloads: plain URLs (an <audio> tag can play them) made unguessable by a token.
And /metrics, for Prometheus, behind its own bearer token."""

from __future__ import annotations

import hmac
import io
import os
import re
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from btro.errors import (
    ApiError,
    AuthenticationError,
    Gone,
    MethodNotAllowed,
    NotFound,
    RangeNotSatisfiable,
)
from btro.errors.handlers import error_response

from . import testmode
from .models import Job
from .parameters import refuse_unknown
from .selectors import job_is_expired, job_view, queue_states
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


class _QueueCollector(Collector):
    """The separation queues, read from the jobs at scrape time (one query)."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "btro_queue_depth",
            "Live jobs waiting in the queue (no run holds them).",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "btro_queue_oldest_age_seconds",
            "Seconds the oldest waiting live job has waited (0: none waits).",
            labels=["queue"],
        )
        running = GaugeMetricFamily(
            "btro_queue_running", "Live jobs a worker run holds now.", labels=["queue"]
        )
        now = timezone.now()
        for queue, state in sorted(queue_states().items()):
            oldest = state.oldest_enqueued_at
            depth.add_metric([queue], state.waiting)
            age.add_metric([queue], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
            running.add_metric([queue], state.running)
        yield from (depth, age, running)


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def _registry() -> CollectorRegistry:
    """This process's metrics, or, with PROMETHEUS_MULTIPROC_DIR, those of every process
    sharing the directory (btro/metrics.py says why); and the queues."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_QueueCollector())
    return registry


@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics, Prometheus' text format, for a bearer of BTRO_METRICS_TOKEN; a 404 where
    no token is set, so that nothing shows by default."""
    token = settings.BTRO_METRICS_TOKEN
    if not token:
        return error_response(request, NotFound("No such page."))
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        return error_response(
            request,
            AuthenticationError(
                "Send the metrics token as 'Authorization: Bearer <BTRO_METRICS_TOKEN>'.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            ),
        )
    if request.method not in ("GET", "HEAD"):
        return error_response(
            request,
            MethodNotAllowed(
                f"Method {request.method} is not allowed here: use GET.",
                headers={"Allow": "GET, HEAD"},
            ),
        )
    response = HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
