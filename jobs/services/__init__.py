"""Writes for jobs, one module per stage of a job's life.

- `create`: check an upload, price it, store it and queue it (a test key's job: `jobs.testmode`).
- `fetch`: a file_url job's input, downloaded by the worker through the outbound guard.
- `run`: the worker's side: claim, fetch, separate in the child, settle the cost, store stems.
- `cancel`: the owner ends a job: cancel (failed, `canceled`, refunded) and delete (files gone).
- `sweep`: recovery (requeue jobs whose worker died or whose message was lost) and expiry.
- `metadata`: the caller's key/value pairs on a job, their limits and later changes.
- `state`: the transitions the stages share (claim, heartbeat, hand back, finish, fail) and
  the one seam where services reach the actors.
"""

from .cancel import job_cancel, job_delete
from .create import job_cost, job_create
from .metadata import job_metadata_update
from .run import job_run, job_settle, worker_stopping
from .state import (
    job_claim,
    job_fail,
    job_hand_back,
    job_heartbeat,
    job_release,
    job_resend_at_lapse,
    result_name,
)
from .sweep import job_purge, job_sweep

__all__ = [
    "job_cancel",
    "job_claim",
    "job_cost",
    "job_create",
    "job_delete",
    "job_fail",
    "job_hand_back",
    "job_heartbeat",
    "job_metadata_update",
    "job_purge",
    "job_release",
    "job_resend_at_lapse",
    "job_run",
    "job_settle",
    "job_sweep",
    "result_name",
    "worker_stopping",
]
