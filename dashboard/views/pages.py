"""The landing page or overview, usage, and the API reference."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import api_key_list_current, credit_balance, credit_ledger
from jobs.engines import EngineChoice, engine_choices
from jobs.selectors import job_minutes_by_day, job_search
from jobs.separation import TIER_STEMS, TIERS

from ..charts import minutes_chart
from ..forms import UsageForm
from ..quickstart import curl_create, site_url
from ..reference import ERROR_EXAMPLE, ERRORS, api_reference
from ..reveal import Revealed, take_revealed
from . import AuthenticatedHttpRequest
from .jobs import job_rows

USAGE_DAYS = 30
LEDGER_PER_PAGE = 25


def _quickstart_key(request: HttpRequest, revealed: Revealed | None) -> str:
    """The full test key while it is being shown once, else its mask, else a placeholder."""
    if revealed and revealed.mode == "test":
        return revealed.secret
    if not request.user.is_authenticated:
        return "$BTRO_API_KEY"
    key = api_key_list_current(user=request.user).filter(mode="test").first()
    return key.mask if key else "$BTRO_API_KEY"


def _tiers() -> list[tuple[str, tuple[str, ...], EngineChoice]]:
    """Each tier's stems, and the engine that runs it here and why (the tier tables)."""
    choices = engine_choices()
    return [(tier, stems, choices[tier]) for tier, stems in TIER_STEMS.items()]


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        landing = {"curl": curl_create(request), "tiers": _tiers()}
        return render(request, "dashboard/landing.html", landing)
    revealed = take_revealed(request)
    now = timezone.now()
    recent = job_rows(job_search(user=request.user, now=now)[:5], now=now)
    context = {
        "revealed": revealed,
        "keys": api_key_list_current(user=request.user),
        "recent": recent,
        "balance": credit_balance(user=request.user),
        "curl": curl_create(request, key=_quickstart_key(request, revealed)),
    }
    return render(request, "dashboard/overview.html", context)


@login_required
def usage(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = UsageForm(request.GET)
    mode = (form.is_valid() and form.cleaned_data["mode"]) or "live"
    today = timezone.now().date()
    first_day = today - timedelta(days=USAGE_DAYS - 1)
    since = datetime.combine(first_day, time.min, tzinfo=timezone.get_current_timezone())
    minutes = job_minutes_by_day(user=request.user, livemode=mode == "live", since=since)
    chart = minutes_chart(minutes=minutes, first_day=first_day, days=USAGE_DAYS, tiers=TIERS)
    ledger = Paginator(credit_ledger(user=request.user), LEDGER_PER_PAGE)
    context = {
        "mode": mode,
        "chart": chart,
        "days": USAGE_DAYS,
        "balance": credit_balance(user=request.user),
        "prices": [(tier, settings.BTRO_CREDITS_PER_MINUTE.get(tier)) for tier in TIERS],
        "ledger": ledger.get_page(request.GET.get("page")),
    }
    return render(request, "dashboard/usage.html", context)


def reference(request: HttpRequest) -> HttpResponse:
    revealed = take_revealed(request) if request.user.is_authenticated else None
    context = {
        "ref": api_reference(),
        "errors": ERRORS,
        "error_example": ERROR_EXAMPLE,
        "curl": curl_create(request, key=_quickstart_key(request, revealed)),
        "revealed": revealed,
        "base_url": site_url(request),
        "tiers": _tiers(),
    }
    return render(request, "dashboard/reference.html", context)
