"""Django's `check`, which first says which engine each tier runs and why (jobs.engines)."""

from typing import Any

from django.conf import settings
from django.core.management.commands.check import Command as CheckCommand

from jobs.engines import engine_choices


class Command(CheckCommand):
    def handle(self, *app_labels: Any, **options: Any) -> None:
        if not options["list_tags"]:
            self.stdout.write(f"Engines (BTRO_MODEL_DIR={settings.BTRO_MODEL_DIR}):")
            for tier, (engine, reason) in engine_choices().items():
                self.stdout.write(f"  {tier:<14} {engine:<7} {reason}")
        super().handle(*app_labels, **options)
