import socket
import threading
from typing import Any

import dramatiq
from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand
from django.core.servers.basehttp import WSGIServer
from dramatiq import Worker

from jobs.idempotency import idempotency_release_in_progress
from jobs.scheduling import repeat_in_thread
from jobs.services import job_sweep

WEBHOOKS = "webhooks"  # the delivery actor's queue (webhooks.tasks)


class BacklogWSGIServer(WSGIServer):
    # runserver listens with a backlog of 10: past it, a burst of clients gets SYN cookies
    # and then connection resets. Queue them like any server does.
    request_queue_size = socket.SOMAXCONN


class Command(BaseCommand):
    help = (
        "Serve the platform. With no BROKER_URL, a worker and the recovery/expiry sweep run "
        "inside this process (the embedded default)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, addrport: str, **options: Any) -> None:
        stop: threading.Event | None = None
        workers: list[Worker] = []
        if settings.BTRO_EMBEDDED_WORKER:
            # Messages of the in-memory broker died with the last process: requeue now.
            counts = job_sweep(stale_seconds=0, requeue_seconds=0)
            if counts["requeued"]:
                self.stderr.write(f"Requeued {counts['requeued']} unfinished job(s).")
            # So were its requests: their Idempotency-Keys are free for a retry now, not in 10 min.
            idempotency_release_in_progress()
            # Every queue: jobs of each engine (and what else is sent); the sweep runs here.
            # Webhook deliveries get workers of their own: a slow receiver never holds up a job.
            broker = dramatiq.get_broker()
            others = broker.get_declared_queues() - {WEBHOOKS}
            workers = [
                Worker(broker, queues=others, worker_threads=settings.BTRO_WORKER_THREADS),
                Worker(broker, queues={WEBHOOKS}, worker_threads=4),
            ]
            for worker in workers:
                worker.start()
            stop = repeat_in_thread(settings.BTRO_SWEEP_INTERVAL_SECONDS, job_sweep, name="sweep")
            self.stderr.write("Embedded worker started (set BROKER_URL to run workers apart).")
        # The installed runserver (staticfiles' when it is installed), which extends Django's.
        runserver = load_command_class(get_commands()["runserver"], "runserver")
        assert isinstance(runserver, RunserverCommand)
        runserver.server_cls = BacklogWSGIServer
        try:
            call_command(runserver, addrport, use_reloader=False)
        finally:
            if stop is not None:
                stop.set()
            for worker in workers:
                worker.stop()
