"""`manage.py separate INPUT --tier T --out DIR`: separate one file, outside the job queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.engines import build_engine
from jobs.separation import TIERS, SeparationError
from jobs.separation.audio import FORMATS, decode, encode


class Command(BaseCommand):
    help = "Separate an audio file into the stems of a tier, writing DIR/<stem>.<ext>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("input", help="an audio file: WAV, FLAC, MP3, OGG (M4A with ffmpeg)")
        parser.add_argument("--tier", required=True, choices=TIERS)
        parser.add_argument("--engine", choices=("dsp", "demucs"), default=None)
        parser.add_argument("--format", choices=FORMATS, default="wav")
        parser.add_argument("--out", required=True, help="folder for the stems (created)")

    def handle(self, *args: Any, **options: Any) -> None:
        tier, fmt = str(options["tier"]), str(options["format"])
        out = Path(str(options["out"]))
        show = self.stderr.isatty()
        try:
            audio, sample_rate = decode(str(options["input"]))
            engine = build_engine(tier, options["engine"] and str(options["engine"]))
            stems = engine.separate(audio, sample_rate, tier, self._bar if show else None)
            del audio
            out.mkdir(parents=True, exist_ok=True)
            for stem in list(stems):
                path = out / f"{stem}.{fmt}"
                # Pop each stem as it is written: long tracks never hold every stem twice.
                encode(stems.pop(stem), sample_rate, path, fmt)
                self.stdout.write(str(path))
        except SeparationError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot write to {out}: {exc.strerror or exc}") from None

    def _bar(self, percent: float) -> None:
        filled = int(percent / 100 * 30)
        bar = f"\r[{'#' * filled}{'.' * (30 - filled)}] {percent:5.1f}%"
        self.stderr.write(bar, style_func=_plain, ending="\n" if percent >= 100 else "")
        self.stderr.flush()


def _plain(text: str) -> str:
    """Progress is not an error: skip the red that Django gives stderr on a terminal."""
    return text
