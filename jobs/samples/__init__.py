"""The fixed, playable stems that test-mode jobs return (see jobs.testmode), one WAV a stem,
made by `python -m jobs.samples.generate`."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
