"""Writes for webhooks, one module per part; this app imports nothing of `jobs`.

- `endpoints`: create, update, roll, delete; a job's own `webhook` URL and its mode's secret.
- `events`: the outbox the job core writes to when a job ends, and the event object.
- `deliveries`: the signed POST, its retries, the 3-day rule and the sweep's resend.
"""

from .deliveries import (
    EXCERPT_BYTES,
    delivery_attempt,
    delivery_resend,
    delivery_sweep,
    signature,
)
from .endpoints import (
    ALL_EVENTS,
    EVENT_TYPES,
    endpoint_create,
    endpoint_delete,
    endpoint_roll_secret,
    endpoint_update,
    job_webhook_check,
    job_webhook_secret,
    job_webhook_set,
    signing_secret_new,
)
from .events import EVENT_DAYS, event_body, event_object, event_record, event_send_sample

__all__ = [
    "ALL_EVENTS",
    "EVENT_DAYS",
    "EVENT_TYPES",
    "EXCERPT_BYTES",
    "delivery_attempt",
    "delivery_resend",
    "delivery_sweep",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_roll_secret",
    "endpoint_update",
    "event_body",
    "event_object",
    "event_record",
    "event_send_sample",
    "job_webhook_check",
    "job_webhook_secret",
    "job_webhook_set",
    "signature",
    "signing_secret_new",
]
