"""The Prometheus metric objects, for the services to count what they do (no HTTP here: the
core may import this). GET /metrics (jobs/views.py::metrics) exposes them.

One registry for every process kind. prometheus_client keeps each metric in this process's
memory, or, when PROMETHEUS_MULTIPROC_DIR names a directory, in one file per process there,
which the scrape adds up (MultiProcessCollector). So:
- the embedded `manage.py serve` (web, worker and sweep in one process) needs nothing;
- gunicorn's workers and `rundramatiq`'s worker processes on one machine share that directory,
  and any web process's /metrics shows the jobs every worker ran.
Dramatiq's own Prometheus middleware is not used: it starts an unauthenticated HTTP server in
each worker's main process (0.0.0.0:9191), empties the multiprocess directory when it boots
(the web tier's files with it) and counts by actor, not by tier and engine.

Counters that follow a database write are incremented once it commits (`count_on_commit`):
a rolled-back charge or ending is not counted.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from prometheus_client import Counter, Histogram

JOBS_CREATED = Counter(
    "btro_jobs_created",
    "Jobs created, by tier and engine (test jobs: engine test).",
    ["tier", "engine"],
)
JOBS_SUCCEEDED = Counter("btro_jobs_succeeded", "Jobs that succeeded.", ["tier", "engine"])
JOBS_FAILED = Counter(
    "btro_jobs_failed",
    "Jobs that failed (cancels included), by the error.type they show.",
    ["tier", "engine", "error_type"],
)
SEPARATION_SECONDS = Histogram(
    "btro_job_separation_seconds",
    "Wall-clock seconds of a succeeded live job's run: fetch, decode, separate, store.",
    ["engine", "tier"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
AUDIO_SECONDS = Histogram(
    "btro_job_audio_seconds",
    "Seconds of audio in a succeeded live job, as decoded.",
    ["engine", "tier"],
    buckets=(10, 30, 60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 3600),
)
WEBHOOK_DELIVERIES = Counter(
    "btro_webhook_deliveries",
    "Webhook delivery attempts by outcome: succeeded, retrying (failed, sent again later), "
    "failed (given up, or the endpoint is disabled).",
    ["outcome"],
)
CREDITS_CHARGED = Counter(
    "btro_credits_charged", "Credits charged for jobs: costs and settlements upwards."
)
CREDITS_REFUNDED = Counter(
    "btro_credits_refunded", "Credits given back: refunds of failed jobs, settlements downwards."
)


def count_on_commit(count: Callable[[], None]) -> None:
    """Count once the current transaction commits (at once outside one)."""
    transaction.on_commit(count, robust=True)
