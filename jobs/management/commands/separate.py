"""`manage.py separate INPUT --tier T --out DIR`: separate one file, outside the job queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.engines import engine_name_for, engine_options
from jobs.separation import TIERS, SeparationError
from jobs.separation.audio import FORMATS
from jobs.separation.runner import Task, run_task


class Command(BaseCommand):
    help = "Separate an audio file into the stems of a tier, writing DIR/<stem>.<ext>."
    # No system checks: they import the URLs and the API (a quarter second), and nothing
    # they check is used here (an engine that cannot run says so itself).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", help="an audio file: WAV, FLAC, MP3, OGG (M4A with ffmpeg)")
        parser.add_argument("--tier", required=True, choices=TIERS)
        parser.add_argument("--engine", choices=("dsp", "demucs"), default=None)
        parser.add_argument("--format", choices=FORMATS, default="wav")
        parser.add_argument("--out", required=True, help="folder for the stems (created)")

    def handle(self, *args: Any, **options: Any) -> None:
        tier, out = str(options["tier"]), Path(str(options["out"]))
        engine = str(options["engine"] or engine_name_for(tier))
        # An operator's own file: no upload limits, and the engine runs in this process.
        task = Task(
            input_path=str(options["input"]),
            tier=tier,
            engine=engine,
            out_dir=str(out),
            format=str(options["format"]),
            engine_options=engine_options(engine),
        )
        show = self.stderr.isatty()
        try:
            outcome = run_task(task, self._bar if show else lambda percent: None)
        except SeparationError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot write to {out}: {exc.strerror or exc}") from None
        assert outcome is not None  # admitted: no admit callback
        if show:
            self._bar(100.0)
        for info in outcome.stems.values():
            self.stdout.write(info["path"])

    def _bar(self, percent: float) -> None:
        filled = int(percent / 100 * 30)
        bar = f"\r[{'#' * filled}{'.' * (30 - filled)}] {percent:5.1f}%"
        self.stderr.write(bar, style_func=_plain, ending="\n" if percent >= 100 else "")
        self.stderr.flush()


def _plain(text: str) -> str:
    """Progress is not an error: skip the red that Django gives stderr on a terminal."""
    return text
