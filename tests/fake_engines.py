"""Engines for tests of the job machinery: fast, slow, failing, and worker-killing."""

from __future__ import annotations

import logging
import os
import signal
import time

import numpy as np

from jobs.separation import TIER_STEMS, SeparationError


class SplitEngine:
    """Splits the mixture evenly between the tier's stems: instant, and sums back exactly."""

    name = "fake"

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def separate(self, audio, sample_rate, tier, progress=None):
        stems = TIER_STEMS[tier]
        steps = 10
        for step in range(steps):
            time.sleep(self.seconds / steps)
            if progress:
                progress(100 * (step + 1) / steps)
        return {stem: (audio / len(stems)).astype(np.float32) for stem in stems}


class ChattyEngine(SplitEngine):
    """Logs as it works (`lines` lines, `every` s apart), then trips over a bug of its own
    when asked for the studio tier."""

    def __init__(self, lines: int = 1, every: float = 0.0) -> None:
        super().__init__()
        self.lines, self.every = lines, every

    def separate(self, audio, sample_rate, tier, progress=None):
        for _ in range(self.lines):
            logging.getLogger("tests.fake_engines").info("separating %d frames", len(audio))
            time.sleep(self.every)
        if tier == "studio":
            raise ZeroDivisionError("a bug in the engine")
        return super().separate(audio, sample_rate, tier, progress)


class SlowEngine(SplitEngine):
    def __init__(self) -> None:
        super().__init__(seconds=float(os.environ.get("FAKE_ENGINE_SECONDS", "6")))


class FailingEngine(SplitEngine):
    def separate(self, audio, sample_rate, tier, progress=None):
        raise SeparationError("The fake engine refuses this track.")


class HalfWayEngine(SplitEngine):
    """Takes its stems' arrays from the caller (see jobs.separation.Outputs), fills some,
    then fails."""

    takes_outputs = True

    def separate(self, audio, sample_rate, tier, progress=None, outputs=None):
        assert outputs is not None, "the runner hands WAV stems' arrays to this engine"
        for stem in TIER_STEMS[tier][:2]:
            outputs(stem, audio.shape)[:] = audio
        raise SeparationError("The fake engine gave up half way.")


class SuicidalEngine(SplitEngine):
    """Kills the process it runs in, every time: a native crash."""

    def separate(self, audio, sample_rate, tier, progress=None):
        os.kill(os.getpid(), signal.SIGKILL)


class GreedyEngine(SplitEngine):
    """Asks for 4 GB at once (untouched, so it costs nothing where it is allowed)."""

    def separate(self, audio, sample_rate, tier, progress=None):
        hoard = np.empty(1 << 30, dtype=np.float32)
        del hoard
        return super().separate(audio, sample_rate, tier, progress)


class CountingEngine(SplitEngine):
    """Counts the instances made of it: a process should build each engine once."""

    built = 0

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(seconds)
        type(self).built += 1
