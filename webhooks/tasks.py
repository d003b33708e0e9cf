"""The delivery actor: thin, taking a delivery id; the work is in services."""

import dramatiq
from django.conf import settings

from . import services
from .services.deliveries import LEASE_MARGIN_SECONDS


@dramatiq.actor(
    queue_name="webhooks",
    max_retries=0,  # the service schedules its own retries (and the sweep backs them up)
    time_limit=int(settings.BTRO_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS) * 1000,
)
def deliver_webhook(delivery_id: int) -> None:
    services.delivery_attempt(delivery_id=delivery_id)
