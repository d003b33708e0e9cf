import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.tasks import sweep

logger = logging.getLogger(__name__)


def repeat_every(interval: float, action: Callable[[], object], stop: threading.Event) -> None:
    """Run `action` every `interval` seconds until `stop`; a failure is logged and retried."""
    while True:
        try:
            action()
        except Exception:  # a broker or database outage: the sweep is idempotent, try again
            logger.exception("the sweep failed; trying again in %s s", interval)
        if stop.wait(interval):
            return


class Command(BaseCommand):
    help = (
        "Send the recovery/expiry sweep to the workers every BTRO_SWEEP_INTERVAL_SECONDS. "
        "Run one per deployment (more are harmless: the sweep is idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Send one sweep and exit.")

    def handle(self, *args, once: bool, **options):
        if once:
            sweep.send()
            return
        repeat_every(settings.BTRO_SWEEP_INTERVAL_SECONDS, sweep.send, threading.Event())
