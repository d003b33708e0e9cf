"""Run separation in a long-lived child process.

A decoder that hangs, an engine that runs past its time, or a native crash ends the child,
never the worker that asked. The child keeps its engines (and their models) between tasks.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import SeparationError, get_engine

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


class TimedOut(SeparationError):
    """The task ran past its time limit; the child was killed."""


class ChildCrashed(SeparationError):
    """The child process died in the middle of a task."""


@dataclass(frozen=True)
class Task:
    input_path: str
    tier: str
    engine: str
    out_dir: str
    format: str = "wav"
    engine_options: dict = field(default_factory=dict)
    max_seconds: float | None = None


@dataclass(frozen=True)
class Outcome:
    engine: str
    sample_rate: int
    stems: dict[str, dict]  # stem -> {"path", "bytes", "duration"}


def run_task(task: Task, progress: Callable[[float], None], engines: dict | None = None) -> Outcome:
    """Decode, separate and encode, in this process."""
    from .audio import decode, encode

    engines = {} if engines is None else engines
    audio, sample_rate = decode(task.input_path, max_seconds=task.max_seconds)
    progress(2)
    key = (task.engine, tuple(sorted((k, repr(v)) for k, v in task.engine_options.items())))
    if key not in engines:
        engines[key] = get_engine(task.engine, **task.engine_options)
    engine = engines[key]
    stems = engine.separate(audio, sample_rate, task.tier, progress=lambda p: progress(2 + p * 0.9))
    out = {}
    for name, stem in stems.items():
        path = Path(task.out_dir) / f"{name}.{task.format}"
        encode(stem, sample_rate, path, task.format)
        out[name] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "duration": round(len(stem) / sample_rate, 3),
        }
    progress(99)
    return Outcome(engine=engine.name, sample_rate=sample_rate, stems=out)


def _die_with_parent() -> None:
    """Ask Linux to kill this child when its worker dies, even by SIGKILL."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _PipeLogs(logging.handlers.QueueHandler):
    """The child's log records go to the worker, whose logging config (and job id) they take."""

    def __init__(self, send: Callable[[tuple], None]) -> None:
        super().__init__(queue=None)
        self.send = send
        self.setFormatter(logging.Formatter())  # the message (and traceback) alone

    def enqueue(self, record: logging.LogRecord) -> None:
        self.send(("log", record))


def _locked(send: Callable[[tuple], None]) -> Callable[[tuple], None]:
    lock = threading.Lock()

    def locked_send(message: tuple) -> None:
        with lock:
            send(message)

    return locked_send


def _child_main(conn, log_level: int = logging.WARNING) -> None:
    _die_with_parent()
    send = _locked(conn.send)  # an engine's own threads may log too
    logging.basicConfig(level=log_level, handlers=[_PipeLogs(send)], force=True)
    logging.captureWarnings(True)
    engines: dict = {}
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            outcome = run_task(task, lambda p: send(("progress", float(p))), engines)
            send(("done", outcome))
        except SeparationError as exc:
            send(("error", exc))
        except Exception as exc:  # an engine bug must reach the job as a message, not kill us
            logger.exception("The engine failed")
            send(("error", SeparationError(f"The engine failed: {type(exc).__name__}: {exc}")))


class SeparationProcess:
    """One child process, started on first use and again after a crash or a time-out."""

    def __init__(self) -> None:
        self._process = None
        self._conn = None

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        ctx = mp.get_context("spawn")  # a fork of a threaded worker can deadlock
        parent, child = ctx.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        self._process = ctx.Process(target=_child_main, args=(child, level), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        self._process = self._conn = None

    def run(
        self,
        task: Task,
        *,
        timeout: float,
        on_progress: Callable[[float | None], None] = lambda p: None,
    ) -> Outcome:
        """Run `task` in the child; `on_progress(None)` is a heartbeat while nothing is said.

        If anything goes wrong on this side (a failing callback included), the child is
        stopped: its late answer must never be read as the answer to the next task.
        """
        self._ensure_started()
        try:
            kind, payload = self._exchange(task, timeout, on_progress)
        except BaseException:
            self.stop()
            raise
        if kind == "error":
            raise payload  # the child answered, so it is ready for the next task
        return payload

    def _exchange(self, task: Task, timeout: float, on_progress) -> tuple[str, object]:
        self._conn.send(task)
        deadline = time.monotonic() + timeout
        beat_due = time.monotonic() + HEARTBEAT_SECONDS  # the child's log lines don't postpone it
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimedOut(f"Separation took longer than the {timeout:.0f} s limit.")
            try:
                ready = self._conn.poll(max(0.0, min(deadline, beat_due) - now))
                message = self._conn.recv() if ready else None
            except (EOFError, OSError):
                message = ("crashed",)
            if message is not None and message[0] == "log":
                logging.getLogger(message[1].name).handle(message[1])
            elif message is None and not self._process.is_alive():
                message = ("crashed",)
            if message is None or message[0] == "log":
                if time.monotonic() >= beat_due:
                    beat_due = time.monotonic() + HEARTBEAT_SECONDS
                    on_progress(None)
                continue
            kind = message[0]
            if kind == "progress":
                on_progress(message[1])
            elif kind in ("done", "error"):
                return kind, message[1]
            else:
                code = self._process.exitcode if self._process else None
                raise ChildCrashed(f"The separation process died (exit code {code}).")
