"""Probes for operators, outside /v1 (no key, no throttle): /healthz says the process answers,
/readyz that what it needs answers too. They name components and a short reason only, never
an address or an exception's text (those go to the log)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import dramatiq
from django.conf import settings
from django.core import checks
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .errors import MethodNotAllowed
from .errors.handlers import error_response

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache.set("btro:readyz", "ok", 10)
    if cache.get("btro:readyz") != "ok":
        raise RuntimeError("the cache kept nothing")


def _broker() -> None:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.redis import RedisBroker

    broker = dramatiq.get_broker()
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif isinstance(broker, RabbitmqBroker):
        import pika

        pika.BlockingConnection(broker.parameters).close()
    # else the embedded in-memory broker, which is this process


def _storage() -> None:
    bucket = getattr(default_storage, "bucket", None)  # django-storages' S3Storage
    if bucket is not None:
        bucket.meta.client.head_bucket(Bucket=bucket.name)
        return
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)
    if not os.access(media, os.W_OK):
        raise PermissionError("MEDIA_ROOT is not writable")


def _models() -> None:
    # The engines' own system checks (jobs/checks.py, tag "models"): demucs and its checkpoints.
    messages = checks.run_checks(tags=["models"])
    if any(message.is_serious() and not message.is_silenced() for message in messages):
        raise LookupError("checkpoints missing")


# What the apps add to /readyz beside the probes, name → a function of JSON-able facts (jobs adds
# "engines", each tier's engine and why): btro imports no app, the apps register at start-up.
_facts: dict[str, Callable[[], object]] = {}


def readiness_fact(name: str, fact: Callable[[], object]) -> None:
    _facts[name] = fact


def readiness_facts() -> dict[str, object]:
    return {name: fact() for name, fact in _facts.items()}


def readiness(*, worker: bool) -> tuple[bool, dict[str, dict[str, str]]]:
    """Each component: ok, or error with the exception's class as the reason. A worker (this
    process runs jobs) also needs its engines' checkpoints."""
    probes: dict[str, Callable[[], None]] = {
        "database": _database,
        "cache": _cache,
        "broker": _broker,
        "storage": _storage,
    }
    if worker:
        probes["models"] = _models
    components = {}
    for name, probe in probes.items():
        try:
            probe()
            components[name] = {"status": "ok"}
        except Exception as err:
            logger.warning("readyz: %s is not ready", name, exc_info=True)
            components[name] = {"status": "error", "reason": type(err).__name__}
    return all(c["status"] == "ok" for c in components.values()), components


def _probe(view: Callable[[HttpRequest], JsonResponse]) -> Callable[[HttpRequest], JsonResponse]:
    @csrf_exempt
    def wrapped(request: HttpRequest) -> JsonResponse:
        if request.method not in ("GET", "HEAD"):
            error = MethodNotAllowed(
                f"Method {request.method} is not allowed here: use GET.",
                headers={"Allow": "GET, HEAD"},
            )
            return error_response(request, error)
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response

    return wrapped


@_probe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@_probe
def readyz(request: HttpRequest) -> JsonResponse:
    ready, components = readiness(worker=settings.BTRO_EMBEDDED_WORKER)
    body = {"status": "ok" if ready else "error", "components": components, **readiness_facts()}
    return JsonResponse(body, status=200 if ready else 503)
