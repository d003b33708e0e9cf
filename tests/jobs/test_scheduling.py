"""The sweep's clock: an action repeated until told to stop, surviving its own failures."""

from __future__ import annotations

import logging
import threading

import pytest

from jobs.scheduling import repeat_every, repeat_in_thread


def test_it_runs_the_action_again_and_again_until_stopped():
    stop = threading.Event()
    calls = []

    def action():
        calls.append(1)
        if len(calls) == 3:
            stop.set()

    repeat_every(0, action, stop)

    assert len(calls) == 3


def test_a_failing_action_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture):
    stop = threading.Event()
    calls = []

    def action():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the broker is down")
        stop.set()

    with caplog.at_level(logging.ERROR, logger="jobs.scheduling"):
        repeat_every(0, action, stop)

    assert len(calls) == 2
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [ConnectionError]


def test_a_background_repetition_stops_when_its_event_is_set():
    ran = threading.Event()

    stop = repeat_in_thread(3600, ran.set, name="test-sweep")
    assert ran.wait(10)
    thread = next(t for t in threading.enumerate() if t.name == "test-sweep")
    stop.set()

    thread.join(10)
    assert not thread.is_alive() and thread.daemon
