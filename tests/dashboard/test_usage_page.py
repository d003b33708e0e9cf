import pytest

from accounts.services import credit_grant
from jobs.models import Job
from tests.conftest import stored_job

pytestmark = pytest.mark.django_db


def test_usage_shows_the_balance_and_the_ledger(browser_client, user, settings):
    credit_grant(user=user, amount=50, note="Top-up")
    response = browser_client.get("/usage/")
    assert response.context["balance"] == settings.BTRO_FREE_CREDITS + 50
    page = response.content.decode()
    assert "Top-up" in page and "Free allowance" in page and "+50" in page


def test_usage_charts_live_audio_minutes_per_day_by_tier(browser_client, user):
    stored_job(user, tier="pro", seconds=90)
    stored_job(user, tier="pro", seconds=30)
    stored_job(user, tier="basic", seconds=60, days_ago=3)
    stored_job(user, tier="studio", seconds=600, status=Job.Status.FAILED)  # refunded: not usage
    stored_job(user, tier="studio", seconds=600, days_ago=40)  # before the chart's window
    stored_job(user, tier="basic", seconds=600, livemode=False)
    chart = browser_client.get("/usage/").context["chart"]
    assert chart.total == "3"
    assert dict((tier, total) for tier, _, total in chart.legend) == {
        "basic": "1",
        "pro": "2",
        "studio": "0",
        "vocal_remover": "0",
    }
    assert [tick.label for tick in chart.ticks] == ["0", "0.5", "1", "1.5", "2"]
    assert len(chart.bars) == 2
    assert ["pro: 2 min" in bar.title for bar in chart.bars].count(True) == 1


def test_usage_in_test_mode_counts_only_test_jobs(browser_client, user):
    stored_job(user, tier="basic", seconds=600, livemode=False)
    stored_job(user, tier="pro", seconds=60)
    assert browser_client.get("/usage/?mode=test").context["chart"].total == "10"


def test_the_usage_chart_labels_short_test_audio_in_fractions_of_a_minute(browser_client, user):
    stored_job(user, tier="pro", seconds=2, livemode=False)
    chart = browser_client.get("/usage/?mode=test").context["chart"]
    assert chart.total == "0.03"
    assert [tick.label for tick in chart.ticks] == ["0", "0.01", "0.02", "0.03", "0.04"]


def test_the_usage_chart_is_an_inline_svg(browser_client, user):
    stored_job(user, tier="pro", seconds=120)
    page = browser_client.get("/usage/").content.decode()
    assert "<svg" in page and "<rect" in page and "pro: 2 min" in page
