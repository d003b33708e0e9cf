"""`manage.py serve ADDR:PORT`: the platform on gunicorn (threads), and with no BROKER_URL the
embedded worker and sweep inside its one worker process."""

import copy
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import dramatiq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from dramatiq import Worker
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from jobs.idempotency import idempotency_release_in_progress
from jobs.scheduling import repeat_in_thread
from jobs.services import job_sweep

logger = logging.getLogger(__name__)

WEBHOOKS = "webhooks"  # the delivery actor's queue (webhooks.tasks)
# How long a stop waits for the embedded worker's running jobs before leaving them to the
# next start's sweep; below gunicorn's graceful timeout, which then kills the process.
STOP_SECONDS = 20
GRACEFUL_SECONDS = 30


def _second_worker(record: logging.LogRecord) -> bool:
    """False (drop it) for dramatiq's warning that a second worker's middleware was added."""
    message = record.getMessage()
    return not (
        message.startswith("You're adding a middleware of the same type twice")
        and "_WorkerMiddleware" in message
    )


class Embedded:
    """The in-memory broker's workers and the sweep. They live in the process that serves
    the requests which send them messages: gunicorn's one worker process, started after it
    forked (threads do not survive a fork) and stopped as it exits (SIGTERM or SIGINT)."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self.stop_sweep: Any = None

    def start(self) -> None:
        # Messages of the in-memory broker died with the last process: requeue now.
        counts = job_sweep(stale_seconds=0, requeue_seconds=0)
        if counts["requeued"]:
            logger.warning("Requeued %s unfinished job(s).", counts["requeued"])
        # So were its requests: their Idempotency-Keys are free for a retry now, not in 10 min.
        idempotency_release_in_progress()
        # Every queue: jobs of each engine (and what else is sent); the sweep runs here.
        # Webhook deliveries get workers of their own: a slow receiver never holds up a job.
        broker = dramatiq.get_broker()
        others = broker.get_declared_queues() - {WEBHOOKS}
        # Each Worker adds a middleware that gives it consumers for its own queues only;
        # dramatiq warns at the second one as at any duplicate. Here that is by design.
        self.workers = [
            Worker(broker, queues=others, worker_threads=settings.BTRO_WORKER_THREADS),
            Worker(broker, queues={WEBHOOKS}, worker_threads=4),
        ]
        broker_log = logging.getLogger(f"dramatiq.broker.{type(broker).__name__}")
        broker_log.addFilter(_second_worker)
        try:
            for worker in self.workers:
                worker.start()
        finally:
            broker_log.removeFilter(_second_worker)
        self.stop_sweep = repeat_in_thread(
            settings.BTRO_SWEEP_INTERVAL_SECONDS, job_sweep, name="sweep"
        )
        logger.info("Embedded worker started (set BROKER_URL to run workers apart).")

    def stop(self) -> None:
        if self.stop_sweep is not None:
            self.stop_sweep.set()
        for worker in self.workers:
            worker.stop(timeout=STOP_SECONDS * 1000 // max(1, len(self.workers)))
        if self.workers:
            logger.info("Embedded worker stopped.")


class Server(BaseApplication):
    """gunicorn run from here, configured by `options` (gunicorn's setting names)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        assert self.cfg is not None
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from btro.wsgi import application

        return application

    def run(self) -> None:  # BaseApplication.run with the arbiter below
        try:
            GracefulArbiter(self).run()
        except RuntimeError as err:
            raise CommandError(str(err)) from err


class GracefulArbiter(Arbiter):
    """Ctrl-C (SIGINT) stops as SIGTERM does. gunicorn's quick stop (SIGQUIT to the workers)
    shuts a gthread worker's thread pool down from inside a signal handler, and once in a few
    stops under load the worker never got to exit; the graceful one only flags its loop."""

    def handle_int(self) -> None:
        self.handle_term()


def graceful_on_sigint(embedded: Embedded | None) -> Callable[[Any], None]:
    """gunicorn's post_worker_init hook: the worker takes Ctrl-C (the terminal signals the
    whole process group) as SIGTERM too, then the embedded worker starts."""

    def post_worker_init(gunicorn_worker: Any) -> None:
        signal.signal(signal.SIGINT, gunicorn_worker.handle_exit)
        if embedded is not None:
            embedded.start()

    return post_worker_init


def exit_at_once(embedded: Embedded | None) -> Callable[[object, Any], None]:
    """gunicorn's worker_exit hook: the embedded worker stops, then the process ends without
    the interpreter's teardown, which touches every page of the heap it shares with the
    master since the fork (2 s of CPU measured) and made a stop overrun supervisors' kill
    timeouts (honcho's is 5 s)."""

    def worker_exit(_arbiter: object, gunicorn_worker: Any) -> None:
        if embedded is not None:
            embedded.stop()
        if gunicorn_worker.booted:  # else its exit status tells the master to give up
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    return worker_exit


def gunicorn_logging() -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(settings.LOGGING)
    config["loggers"]["gunicorn.error"] = {"level": settings.LOG_LEVEL, "propagate": True}
    config["loggers"]["gunicorn.access"] = {"level": "WARNING", "propagate": True}
    return config


def bind_address(addrport: str) -> str:
    """runserver's forms: PORT, ADDR:PORT, [IPv6]:PORT."""
    return addrport if ":" in addrport else f"127.0.0.1:{addrport}"


class Command(BaseCommand):
    help = (
        "Serve the platform on gunicorn. With no BROKER_URL, one worker process with threads, "
        "and a worker and the recovery/expiry sweep inside it (the embedded default); with "
        "BROKER_URL, the web tier alone: WEB_CONCURRENCY processes of WEB_THREADS threads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, addrport: str, **options: Any) -> None:
        gunicorn: dict[str, Any] = {
            "bind": [bind_address(addrport)],
            "worker_class": "gthread",
            "threads": settings.BTRO_WEB_THREADS,
            "workers": settings.BTRO_WEB_WORKERS,
            "graceful_timeout": GRACEFUL_SECONDS,
            "proc_name": "btro",
            # Its default is one path per user: two servers on a machine would share it.
            "control_socket_disable": True,
            # gunicorn's own lines in the platform's format (LOG_FORMAT); no line per request.
            "logconfig_dict": gunicorn_logging(),
        }
        embedded = None
        if settings.BTRO_EMBEDDED_WORKER:
            # The in-memory broker is one process's memory: the jobs it queues run there.
            embedded = Embedded()
            gunicorn["workers"] = 1
        gunicorn["post_worker_init"] = graceful_on_sigint(embedded)
        gunicorn["worker_exit"] = exit_at_once(embedded)
        connections.close_all()  # the checks' connections are no worker's to share
        Server(gunicorn).run()
