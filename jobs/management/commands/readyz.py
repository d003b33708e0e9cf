import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from btro.health import readiness, readiness_facts


class Command(BaseCommand):
    help = (
        "A worker's readiness probe: database, cache, broker, storage and the engines' "
        "checkpoints, as JSON like GET /readyz (with each tier's engine); exits 1 when one "
        "of them is not ready."
    )
    requires_system_checks: list[str] = []  # a missing checkpoint is an answer, not a crash

    def handle(self, *args: Any, **options: Any) -> None:
        ready, components = readiness(worker=True)
        self.stdout.write(
            json.dumps(
                {
                    "status": "ok" if ready else "error",
                    "components": components,
                    **readiness_facts(),
                }
            )
        )
        if not ready:
            raise CommandError("not ready", returncode=1)
