"""Run separation in a long-lived child process.

A decoder that hangs, an engine that runs past its time, or a native crash ends the child,
never the worker that asked. The child keeps its engines (and their models) between tasks,
in the package's per-process cache (`cached_engine`), as `manage.py separate` does.

The child decodes first and says how much audio it got (`("decoded", Decoded)`); it
separates only once the parent answers "go", so the parent can settle what the job costs
by the audio itself, never by a header. Each task runs under a memory budget: an engine
that asks for more fails the task with OverBudget instead of taking the machine.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing as mp
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import SeparationError, cached_engine

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
_CRASHED: tuple[Any, ...] = ("crashed",)


class TimedOut(SeparationError):
    """The task ran past its time limit; the child was killed."""


class ChildCrashed(SeparationError):
    """The child process died in the middle of a task."""


class OverBudget(SeparationError):
    """The task needed more memory than the separation process may use."""


class _Stopped(Exception):
    """The parent answered "stop" to the decoded length."""


@dataclass(frozen=True)
class Task:
    input_path: str
    tier: str
    engine: str
    out_dir: str
    format: str = "wav"
    engine_options: dict = field(default_factory=dict)
    max_seconds: float | None = None
    max_samples: int | None = None  # frames × channels once decoded
    memory_mb: int | None = None  # the child's budget of private memory (RLIMIT_DATA)


@dataclass(frozen=True)
class Decoded:
    """What the decoder actually produced, whatever the file's header said."""

    frames: int
    channels: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Outcome:
    engine: str
    sample_rate: int
    stems: dict[str, dict]  # stem -> {"path", "bytes", "duration"}


def run_task(
    task: Task,
    progress: Callable[[float], None],
    admit: Callable[[Decoded], bool] = lambda decoded: True,
) -> Outcome | None:
    """Decode, ask `admit` whether to go on, separate and encode, in this process.

    The stems go to `task.out_dir`, made once stems are written. None when `admit` said
    no: nothing was separated. The engine is built (its modules imported) on a thread
    while the file decodes. WAV stems of an engine that takes `outputs` (see Outputs) are
    written by the engine straight into their files: there is no encoding pass.
    """
    from .audio import decode, encode, wav_array

    loader = ThreadPoolExecutor(1, thread_name_prefix="engine-load")
    loading = loader.submit(cached_engine, task.engine, task.engine_options)
    loader.shutdown(wait=False)  # a refused or undecodable file does not wait for it
    audio, sample_rate = decode(
        task.input_path, max_seconds=task.max_seconds, max_samples=task.max_samples
    )
    if not admit(Decoded(frames=len(audio), channels=audio.shape[1], sample_rate=sample_rate)):
        return None
    progress(2)
    engine = loading.result()
    out_dir = Path(task.out_dir)
    fresh = not out_dir.exists()
    written: list[Path] = []

    def wav(name: str, shape: tuple[int, int]) -> np.ndarray:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.wav"
        written.append(path)
        return wav_array(path, shape, sample_rate)

    direct = task.format == "wav" and getattr(engine, "takes_outputs", False)
    try:
        stems = engine.separate(
            audio,
            sample_rate,
            task.tier,
            progress=lambda p: progress(2 + p * 0.9),
            **({"outputs": wav} if direct else {}),
        )
    except BaseException:
        for path in written:  # no half-written stems left behind
            path.unlink(missing_ok=True)
        if fresh and written:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    del audio  # the stems are written one at a time: never hold the input and all of them
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in list(stems):
        path = out_dir / f"{name}.{task.format}"
        stem = stems.pop(name)
        if path not in written:
            encode(stem, sample_rate, path, task.format)
        out[name] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "duration": round(len(stem) / sample_rate, 3),
        }
        del stem
    progress(99)
    return Outcome(engine=engine.name, sample_rate=sample_rate, stems=out)


def _set_budget(memory_mb: int | None) -> None:
    """Cap this process's private memory (heap and anonymous maps, what RLIMIT_DATA counts).

    Not RLIMIT_AS: PyTorch reserves address space it never touches, and stems on temp files
    are shared file maps, which RLIMIT_DATA leaves out: what is capped is what uses RAM.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = resource.RLIM_INFINITY if not memory_mb else memory_mb << 20
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _over_budget(task: Task) -> OverBudget:
    return OverBudget(
        f"Separation needed more than this worker's memory budget of {task.memory_mb} MB."
    )


def _die_with_parent() -> None:
    """Ask Linux to kill this child when its worker dies, even by SIGKILL."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Pipe:
    """The child's end of the pipe, locked (an engine's own threads may log too), and a
    queue for logging's QueueHandler: the child's log records go to the worker, whose
    logging config (and job id) they take."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            self.conn.send(message)

    def put_nowait(self, record: logging.LogRecord) -> None:
        self.send(("log", record))

    def get(self) -> logging.LogRecord:
        raise NotImplementedError("only the worker reads the log records")


def _child_main(conn: Connection, log_level: int = logging.WARNING) -> None:
    _die_with_parent()
    pipe = _Pipe(conn)
    send = pipe.send
    logs = logging.handlers.QueueHandler(pipe)
    logs.setFormatter(logging.Formatter())  # the message (and traceback) alone
    logging.basicConfig(level=log_level, handlers=[logs], force=True)
    logging.captureWarnings(True)

    def admit(decoded: Decoded) -> bool:
        send(("decoded", decoded))
        return conn.recv() == "go"

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            _set_budget(task.memory_mb)
            outcome = run_task(task, lambda p: send(("progress", float(p))), admit)
            send(("done", outcome) if outcome else ("stopped", None))
        except MemoryError:
            send(("error", _over_budget(task)))
        except SeparationError as exc:
            send(("error", exc))
        except Exception as exc:  # an engine bug must reach the job as a message, not kill us
            if "can't allocate memory" in str(exc):  # PyTorch's allocator, under the budget
                send(("error", _over_budget(task)))
                continue
            logger.exception("The engine failed")
            send(("error", SeparationError(f"The engine failed: {type(exc).__name__}: {exc}")))


class SeparationProcess:
    """One child process, started on first use and again after a crash or a time-out."""

    def __init__(self) -> None:
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def _ensure_started(self) -> tuple[BaseProcess, Connection]:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._process, self._conn
        ctx = mp.get_context("spawn")  # a fork of a threaded worker can deadlock
        parent, child = ctx.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        process = ctx.Process(target=_child_main, args=(child, level), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        return process, parent

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (None before the first task)."""
        return self._process.pid if self._process is not None else None

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
        on_decoded: Callable[[Decoded], None] = lambda decoded: None,
        beat_seconds: float | None = None,
    ) -> Outcome:
        """Run `task` in the child; `on_progress(None)` is a heartbeat, every `beat_seconds`
        (HEARTBEAT_SECONDS by default) while nothing is said. If `on_progress` raises, the
        child is killed at once.

        `on_decoded` hears how much audio the file really holds before any separation; if it
        raises, the child is told to stop (it stays up for the next task) and the exception
        comes out of here. If anything else goes wrong on this side (a failing callback
        included), the child is stopped: its late answer must never be read as the answer
        to the next task.
        """
        process, conn = self._ensure_started()
        try:
            beat = beat_seconds or HEARTBEAT_SECONDS
            answer = self._exchange(process, conn, task, timeout, on_progress, on_decoded, beat)
        except BaseException:
            self.stop()
            raise
        if isinstance(answer, OverBudget):
            self.stop()  # a failed allocation may have left native code in a bad state
        if isinstance(answer, BaseException):
            raise answer  # otherwise the child answered, so it is ready for the next task
        return answer

    def _exchange(
        self,
        process: BaseProcess,
        conn: Connection,
        task: Task,
        timeout: float,
        on_progress: Callable[[float | None], None],
        on_decoded: Callable[[Decoded], None],
        beat_seconds: float,
    ) -> Outcome | BaseException:
        """The child's answer: the outcome, its error, or the refusal of `on_decoded`."""
        conn.send(task)
        deadline = time.monotonic() + timeout
        beat_due = time.monotonic() + beat_seconds  # the child's log lines don't postpone it
        refusal: BaseException | None = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimedOut(f"Separation took longer than the {timeout:.0f} s limit.")
            message: tuple[Any, ...] | None
            try:
                ready = conn.poll(max(0.0, min(deadline, beat_due) - now))
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                message = _CRASHED
            if message is not None and message[0] == "log":
                logging.getLogger(message[1].name).handle(message[1])
            elif message is None and not process.is_alive():
                message = _CRASHED
            if message is None or message[0] == "log":
                if time.monotonic() >= beat_due:
                    beat_due = time.monotonic() + beat_seconds
                    on_progress(None)
                continue
            kind = message[0]
            if kind == "progress":
                on_progress(message[1])
            elif kind == "decoded":
                try:
                    on_decoded(message[1])
                except Exception as exc:
                    refusal = exc
                conn.send("stop" if refusal else "go")
            elif kind == "stopped" and refusal is not None:
                return refusal
            elif kind in ("done", "error"):
                return message[1]
            else:
                raise ChildCrashed(f"The separation process died (exit code {process.exitcode}).")
