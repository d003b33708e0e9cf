import pytest

from accounts.selectors import api_key_list_current

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_gets_the_landing_page_leading_to_signup(client):
    page = client.get("/").content.decode()
    assert 'href="/signup/"' in page
    assert "curl --request POST" in page


def test_a_logged_in_user_gets_an_overview_of_keys_jobs_balance_and_quickstart(
    browser_client, user, settings
):
    response = browser_client.get("/")
    page = response.content.decode()
    assert "Overview" in page
    assert api_key_list_current(user=user).get(mode="test").mask in page
    assert response.context["balance"] == settings.BTRO_FREE_CREDITS
    assert "curl --request POST" in page and "Recent jobs" in page


def test_pages_for_accounts_send_anonymous_visitors_to_login(client):
    for path in ("/keys/", "/jobs/", "/try/", "/usage/", "/jobs/job_test_x/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path
