import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Many logins per test: the real hasher's slowness is not what these tests are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser_client(client, user):
    client.force_login(user)
    return client
