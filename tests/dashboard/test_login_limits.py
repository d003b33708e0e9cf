"""The login limits: counted before the password is checked, and keyed so a stranger cannot lock
the owner out. The clock is frozen so no test straddles the end of a rate window."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.test import Client

from dashboard.throttle import THROTTLED_MESSAGE

PASSWORD = "a long passphrase 42"
RACERS = 30


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel("2026-01-05 12:00:00+00:00", tick=False):
        yield


def login(email: str, password: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": email, "password": password})


class HeldPasswordChecks:
    """Counts password checks and holds each one until every racer has either reached a check or
    been answered, so the race is as wide as it can be whatever the machine's speed."""

    def __init__(self, monkeypatch, racers: int):
        self.checks = 0
        self.answered = 0
        self._racers = racers
        self._changed = threading.Condition()
        self._release = threading.Event()
        real = ModelBackend.authenticate

        def authenticate(backend, request, *args, **kwargs):
            with self._changed:
                self.checks += 1
                self._changed.notify_all()
            self._release.wait(timeout=30)
            return real(backend, request, *args, **kwargs)

        monkeypatch.setattr(ModelBackend, "authenticate", authenticate)

    def post(self, email: str, password: str, address: str):
        try:
            return login(email, password, address).status_code
        finally:
            connection.close()
            with self._changed:
                self.answered += 1
                self._changed.notify_all()

    def release_when_all_arrived(self) -> None:
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: self.checks + self.answered >= self._racers, timeout=30
            )
        self._release.set()
        assert arrived, "the racers never all arrived"


@pytest.mark.django_db(transaction=True)
def test_simultaneous_wrong_passwords_get_no_more_checks_than_the_limit(user, monkeypatch):
    held = HeldPasswordChecks(monkeypatch, RACERS)
    with ThreadPoolExecutor(RACERS) as pool:
        statuses = [
            pool.submit(held.post, "dev@example.com", f"wrong {i}", "10.0.0.1")
            for i in range(RACERS)
        ]
        held.release_when_all_arrived()
        statuses = sorted(f.result() for f in statuses)
    assert held.checks == 5
    assert statuses == [200] * 5 + [429] * (RACERS - 5)
    refused = login("dev@example.com", PASSWORD, "10.0.0.1")
    assert refused.status_code == 429
    assert held.checks == 5


@pytest.mark.django_db(transaction=True)
def test_simultaneous_guesses_across_emails_from_one_address_get_no_more_checks_than_its_limit(
    monkeypatch,
):
    racers = 40
    held = HeldPasswordChecks(monkeypatch, racers)
    with ThreadPoolExecutor(racers) as pool:
        futures = [
            pool.submit(held.post, f"user{i}@example.com", "wrong", "10.0.0.2")
            for i in range(racers)
        ]
        held.release_when_all_arrived()
        statuses = [f.result() for f in futures]
    assert held.checks == 30
    assert statuses.count(429) == racers - 30


def test_a_strangers_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(user):
    # More attempts than the per-email ceiling: the refused ones must not count towards it.
    for i in range(120):
        login("dev@example.com", f"guess {i}", "203.0.113.7")
    assert login("dev@example.com", "another guess", "203.0.113.7").status_code == 429
    assert login("dev@example.com", PASSWORD, "198.51.100.20").status_code == 302


def test_one_email_has_a_ceiling_of_failures_from_all_addresses_together(user, other_user):
    for address in range(20):
        for _ in range(5):
            assert login("dev@example.com", "wrong", f"10.1.0.{address}").status_code == 200
    blocked = login("dev@example.com", PASSWORD, "10.2.0.1")
    assert blocked.status_code == 429
    assert THROTTLED_MESSAGE in blocked.content.decode()
    assert login("other@example.com", "another passphrase 42", "10.2.0.1").status_code == 302


def test_signing_in_with_the_right_password_does_not_use_up_the_limits(user):
    for _ in range(40):
        assert login("dev@example.com", PASSWORD, "10.0.0.3").status_code == 302
    for _ in range(5):
        assert login("dev@example.com", "wrong", "10.0.0.3").status_code == 200
    assert login("dev@example.com", PASSWORD, "10.0.0.3").status_code == 429
