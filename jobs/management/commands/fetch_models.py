"""Download the official Demucs checkpoints into BTRO_MODEL_DIR (jobs.separation.fetch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.separation.fetch import DEFAULT_MODELS, FetchError, fetch_models


class Command(BaseCommand):
    help = "Download the official Demucs checkpoints into BTRO_MODEL_DIR, checking their hashes."
    # The demucs system check fails until the models are here; this command is its fix.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        default = ",".join(DEFAULT_MODELS)
        parser.add_argument(
            "--models",
            default=default,
            help=f"Comma-separated Demucs model names (default: {default}).",
        )
        parser.add_argument(
            "--model-dir", help="Destination folder (default: settings.BTRO_MODEL_DIR)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model_dir = Path(options["model_dir"] or settings.BTRO_MODEL_DIR)
        names = [name.strip() for name in options["models"].split(",") if name.strip()]
        try:
            fetch_models(names, model_dir, report=self.stdout.write)
        except FetchError as err:
            raise CommandError(str(err)) from err
