"""Dramatiq actors: thin, taking ids; the work is in services."""

import dramatiq
from django.conf import settings

from . import services
from .engines import SEPARATION_QUEUES


@dramatiq.actor(
    queue_name=SEPARATION_QUEUES[0],
    max_retries=settings.BTRO_JOB_MAX_ATTEMPTS,
    min_backoff=1_000,
    max_backoff=30_000,
    # Our own limit kills the separation child first; this one is the backstop.
    time_limit=(settings.BTRO_JOB_TIME_LIMIT_SECONDS + 300) * 1000,
)
def run_job(job_id: str, held_by: str = "") -> None:
    services.job_run(job_id=job_id, held_by=held_by)


# Its messages go to the queue of the job's engine (services.state._enqueue): every process
# declares them all, so a worker started with `--queues` finds the one it names.
for _queue in SEPARATION_QUEUES:
    run_job.broker.declare_queue(_queue)


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=600_000)
def sweep() -> None:
    services.job_sweep()
