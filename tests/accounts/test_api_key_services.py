from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.keys import key_mode
from accounts.models import ApiKey, User
from accounts.selectors import api_key_authenticate, credit_balance
from accounts.services import (
    api_key_create,
    api_key_revoke,
    api_key_roll,
    api_key_touch,
    user_signup,
)
from tests.conftest import key_of

pytestmark = pytest.mark.django_db


def test_the_database_holds_no_key_material(user):
    key, secret = api_key_create(user=user, mode="live")
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())
    assert api_key_authenticate(secret=secret) == key


def test_a_new_account_gets_a_test_key_and_its_free_credits(settings):
    user, key, secret = user_signup(email="new@example.com", password="a long passphrase 42")
    assert list(user.api_keys.all()) == [key] and key.mode == "test"
    assert api_key_authenticate(secret=secret) == key
    assert credit_balance(user=user) == settings.BTRO_FREE_CREDITS


def test_a_revoked_key_no_longer_authenticates(user):
    key, secret = api_key_create(user=user, mode="test")
    api_key_revoke(key=key)
    assert api_key_authenticate(secret=secret) is None


def test_a_rolled_key_works_until_its_chosen_expiry(user):
    key, old = api_key_create(user=user, mode="live")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        new_key, new = api_key_roll(key=key, expire_in="1h")
        assert api_key_authenticate(secret=new) == new_key
        clock.shift(timedelta(minutes=59, seconds=59))
        assert api_key_authenticate(secret=old) == key
        clock.shift(timedelta(seconds=1))
        assert api_key_authenticate(secret=old) is None
        assert api_key_authenticate(secret=new) == new_key


def test_rolling_now_ends_the_old_key_at_once(user):
    key, old = api_key_create(user=user, mode="test")
    api_key_roll(key=key, expire_in="now")
    assert api_key_authenticate(secret=old) is None


def test_last_used_is_written_at_most_once_a_minute(user, django_assert_num_queries):
    key, _ = api_key_create(user=user, mode="test")
    api_key_touch(key=key)
    first = key.last_used_at
    with django_assert_num_queries(0):
        api_key_touch(key=key)
    assert key.last_used_at == first


def test_a_malformed_key_is_refused_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api_key_authenticate(secret="sk_test_not-a-real-key") is None


def test_create_api_key_prints_the_key_alone_and_creates_the_user(capsys):
    call_command("create_api_key", email="new@example.com", mode="live", name="ci")
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    secret = out.strip()
    assert key_mode(secret) == "live"
    assert key_of(secret).user == User.objects.get(email="new@example.com")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("create", ["signup", "create"])
def test_a_password_is_hashed_before_the_transaction_that_stores_the_account(monkeypatch, create):
    """The slow hash must not hold a transaction: on SQLite it would lock out every writer."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.db import connection

    from accounts import services

    in_transaction = []
    encode = PBKDF2PasswordHasher.encode

    def spy(self, *args, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(PBKDF2PasswordHasher, "encode", spy)
    if create == "signup":
        services.user_signup(email="new@example.com", password="a long passphrase 42")
    else:
        services.user_create(email="new@example.com", password="a long passphrase 42")
    assert in_transaction == [False]
    assert User.objects.get(email="new@example.com").check_password("a long passphrase 42")
