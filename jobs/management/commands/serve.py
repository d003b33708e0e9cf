import socket
import threading

import dramatiq
from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import WSGIServer
from dramatiq import Worker

from jobs.management.commands.scheduler import repeat_every
from jobs.services import job_sweep


class BacklogWSGIServer(WSGIServer):
    # runserver listens with a backlog of 10: past it, a burst of clients gets SYN cookies
    # and then connection resets. Queue them like any server does.
    request_queue_size = socket.SOMAXCONN


class Command(BaseCommand):
    help = (
        "Serve the platform. With no BROKER_URL, a worker and the recovery/expiry sweep run "
        "inside this process (the embedded default)."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        stop = threading.Event()
        worker = None
        if settings.BTRO_EMBEDDED_WORKER:
            # Messages of the in-memory broker died with the last process: requeue now.
            counts = job_sweep(stale_seconds=0, requeue_seconds=0)
            if counts["requeued"]:
                self.stderr.write(f"Requeued {counts['requeued']} unfinished job(s).")
            worker = Worker(
                dramatiq.get_broker(), queues={"jobs"}, worker_threads=settings.BTRO_WORKER_THREADS
            )
            worker.start()
            interval = settings.BTRO_SWEEP_INTERVAL_SECONDS
            threading.Thread(
                target=repeat_every, args=(interval, job_sweep, stop), daemon=True, name="sweep"
            ).start()
            self.stderr.write("Embedded worker started (set BROKER_URL to run workers apart).")
        runserver = load_command_class(get_commands()["runserver"], "runserver")
        runserver.server_cls = BacklogWSGIServer
        try:
            call_command(runserver, addrport, use_reloader=False)
        finally:
            stop.set()
            if worker is not None:
                worker.stop()
