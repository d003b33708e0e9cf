import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from jobs.scheduling import repeat_every
from jobs.tasks import sweep


class Command(BaseCommand):
    help = (
        "Send the recovery/expiry sweep to the workers every BTRO_SWEEP_INTERVAL_SECONDS. "
        "Run one per deployment (more are harmless: the sweep is idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Send one sweep and exit.")

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        if once:
            sweep.send()
            return
        repeat_every(settings.BTRO_SWEEP_INTERVAL_SECONDS, sweep.send, threading.Event())
