import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.tasks import sweep

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Send the recovery/expiry sweep to the workers every BTRO_SWEEP_INTERVAL_SECONDS. "
        "Run one per deployment (more are harmless: the sweep is idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Send one sweep and exit.")

    def handle(self, *args, once: bool, **options):
        while True:
            try:
                sweep.send()
            except Exception:  # a broker outage: keep trying, the sweep is idempotent
                if once:
                    raise
                logger.exception("could not send the sweep; retrying")
            if once:
                return
            time.sleep(settings.BTRO_SWEEP_INTERVAL_SECONDS)
