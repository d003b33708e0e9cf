"""Log context: every record says which request (web) or job (worker) it belongs to.

RequestIdMiddleware binds `request_id_var` around a request, JobLogContext binds `job_id_var`
around a job's message; ContextFilter, on the handler in settings.LOGGING, copies both onto
every record, so one grep of an id finds all the lines of its request or job.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

import dramatiq
from dramatiq.broker import MessageProxy
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)


@contextmanager
def bound(var: ContextVar[str | None], value: str | None) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is None:  # django.request logs after the middleware, with the request
            request_id = getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = request_id
        record.job_id = job_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z INFO jobs.services [req_…|-] message`, in UTC."""

    converter = time.gmtime  # type: ignore[assignment]  # the stdlib's own idiom for UTC
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s|%(job_id)s] %(message)s"
        )

    def formatMessage(self, record: logging.LogRecord) -> str:
        values = record.__dict__
        ids = {name: values.get(name) or "-" for name in ("request_id", "job_id")}
        return (self._fmt or "%(message)s") % {**values, **ids}


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, ids, extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # Django passes the request object itself as an extra: its repr says nothing new.
            reserved_attrs=[*RESERVED_ATTRS, "request"],
        )


class JobLogContext(dramatiq.Middleware):
    """Bind `job_id_var` while an actor whose first parameter is `job_id` handles a message."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        job_id = message.kwargs.get("job_id")
        if job_id is None and message.args and _takes_job_id(broker, message.actor_name):
            job_id = message.args[0]
        job_id_var.set(job_id)

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        job_id_var.set(None)

    after_skip_message = after_process_message


def _takes_job_id(broker: dramatiq.Broker, actor_name: str) -> bool:
    return _first_parameter(broker.get_actor(actor_name).fn) == "job_id"


@cache
def _first_parameter(fn) -> str | None:
    return next(iter(inspect.signature(fn).parameters), None)
