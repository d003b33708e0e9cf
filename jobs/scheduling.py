"""Repeating an action on a clock: the sweep, sent by `scheduler` or run inside `serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def repeat_every(interval: float, action: Callable[[], object], stop: threading.Event) -> None:
    """Run `action` every `interval` seconds until `stop`; a failure is logged and retried."""
    while True:
        try:
            action()
        except Exception:  # a broker or database outage: the sweep is idempotent, try again
            logger.exception("the sweep failed; trying again in %s s", interval)
        if stop.wait(interval):
            return


def repeat_in_thread(
    interval: float, action: Callable[[], object], *, name: str
) -> threading.Event:
    """`repeat_every` on a daemon thread; set the event it returns to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=repeat_every, args=(interval, action, stop), daemon=True, name=name
    ).start()
    return stop
