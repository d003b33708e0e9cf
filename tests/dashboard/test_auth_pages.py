import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import ApiKey, User
from dashboard.forms import LOGIN_FAILED
from dashboard.throttle import THROTTLED_MESSAGE
from tests.conftest import key_of

pytestmark = pytest.mark.django_db
PASSWORD = "a long passphrase 42"


def signup(client, email="new@example.com", password=PASSWORD):
    return client.post("/signup/", {"email": email, "password": password})


def login(client, email, password):
    return client.post("/login/", {"username": email, "password": password})


def page_without_email_and_token(response) -> str:
    page = response.content.decode()
    page = page.replace("nobody@example.com", "").replace("dev@example.com", "")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def test_signup_creates_an_account_and_shows_its_test_key_once(client):
    response = signup(client)
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    page = client.get(response["Location"]).content.decode()
    shown = re.search(r"sk_test_[0-9A-Za-z]{38}", page)
    assert shown, page
    secret = shown.group(0)
    assert key_of(secret).user == user
    assert secret not in client.get("/").content.decode()
    assert secret not in client.get("/keys/").content.decode()


def test_signup_leaves_one_working_test_key(client):
    signup(client)
    keys = [k for k in ApiKey.objects.filter(user__email="new@example.com") if k.is_usable()]
    assert [k.mode for k in keys] == ["test"]


def test_signup_refuses_an_email_already_registered_without_saying_so(client, user):
    response = signup(client, email="DEV@example.com")
    assert response.status_code == 200
    assert "could not create an account" in response.content.decode()
    assert User.objects.filter(email__iexact="dev@example.com").count() == 1


def test_signup_refuses_a_short_password(client):
    response = signup(client, password="short")
    assert response.status_code == 200
    assert not User.objects.filter(email="new@example.com").exists()


def test_login_with_the_right_password_goes_to_the_overview(client, user):
    response = login(client, "Dev@Example.com", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_failure_message_is_identical_for_unknown_email_and_wrong_password(client, user):
    unknown = login(client, "nobody@example.com", PASSWORD)
    wrong = login(client, "dev@example.com", "wrong password 42")
    assert unknown.status_code == wrong.status_code == 200
    assert LOGIN_FAILED in unknown.content.decode()
    assert page_without_email_and_token(unknown) == page_without_email_and_token(wrong)


def test_repeated_login_failures_for_one_email_are_throttled(client, user):
    for _ in range(5):
        assert login(client, "dev@example.com", "wrong password 42").status_code == 200
    blocked = login(client, "dev@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert THROTTLED_MESSAGE in blocked.content.decode()
    assert "_auth_user_id" not in client.session


def test_many_failures_from_one_address_are_throttled_across_emails(client, db):
    for i in range(30):
        login(client, f"user{i}@example.com", "wrong")
    assert login(client, "fresh@example.com", "wrong").status_code == 429


def test_every_form_needs_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    for path, data in [
        ("/signup/", {"email": "x@example.com", "password": PASSWORD}),
        ("/login/", {"username": "dev@example.com", "password": PASSWORD}),
        ("/password-reset/", {"email": "dev@example.com"}),
    ]:
        assert client.post(path, data).status_code == 403, path
    client.force_login(user)
    key = ApiKey.objects.filter(user=user).first()
    assert key is not None
    for path, data in [
        ("/keys/create/", {"mode": "test", "name": "x"}),
        (f"/keys/{key.pk}/roll/", {"expire_in": "now"}),
        (f"/keys/{key.pk}/revoke/", {}),
        ("/try/", {"mode": "test", "tier": "pro"}),
        ("/logout/", {}),
    ]:
        assert client.post(path, data).status_code == 403, path
    assert key.is_usable()


def test_a_form_with_its_csrf_token_is_accepted():
    client = Client(enforce_csrf_checks=True)
    client.get("/signup/")
    token = client.cookies["csrftoken"].value
    data = {"email": "x@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token}
    assert client.post("/signup/", data).status_code == 302


def test_logout_ends_the_session(client, user):
    client.force_login(user)
    client.post("/logout/")
    assert client.get("/keys/").status_code == 302


def test_password_reset_sends_a_link_that_sets_a_new_password(client, user):
    response = client.post("/password-reset/", {"email": "dev@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    sent = re.search(r"http://testserver(/reset/\S+/)", str(mail.outbox[0].body))
    assert sent, mail.outbox[0].body
    link = sent.group(1)
    form_url = client.get(link)["Location"]
    new = {"new_password1": "a brand new passphrase 7", "new_password2": "a brand new passphrase 7"}
    assert client.post(form_url, new).status_code == 302
    assert login(Client(), "dev@example.com", "a brand new passphrase 7").status_code == 302


def test_password_reset_answers_the_same_for_an_unknown_email(client, user):
    known = client.post("/password-reset/", {"email": "dev@example.com"})
    unknown = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert len(mail.outbox) == 1


def test_password_reset_requests_are_throttled_per_email(client, user):
    for _ in range(3):
        client.post("/password-reset/", {"email": "dev@example.com"})
    assert client.post("/password-reset/", {"email": "dev@example.com"}).status_code == 429
    assert len(mail.outbox) == 3
