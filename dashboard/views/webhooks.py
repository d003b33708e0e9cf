"""The Webhooks page, per mode: endpoints (add one: its secret shown once), their state, the
recent deliveries with Resend, and "Send test event"."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from btro.errors import ApiError, NotFound
from jobs.models import Job
from jobs.representation import job_object
from jobs.testmode import test_result
from webhooks import selectors, services
from webhooks.models import WebhookEndpoint

from ..forms import EndpointForm, ModeForm
from . import AuthenticatedHttpRequest

_REVEALED = "dashboard_revealed_webhook_secret"


def _mode(request: AuthenticatedHttpRequest) -> str:
    form = ModeForm(request.GET if request.method == "GET" else request.POST)
    return (form.is_valid() and form.cleaned_data["mode"]) or "test"


def _back(mode: str) -> HttpResponse:
    return redirect(f"{reverse('dashboard:webhooks')}?mode={mode}")


def _endpoint_or_404(request: AuthenticatedHttpRequest, endpoint_id: str) -> WebhookEndpoint:
    """The user's endpoint in either mode (the page shows one mode at a time)."""
    for livemode in (False, True):
        try:
            return selectors.endpoint_get(
                user=request.user, livemode=livemode, endpoint_id=endpoint_id
            )
        except NotFound:
            continue
    raise Http404("No such endpoint.")


def _mode_of(endpoint: WebhookEndpoint) -> str:
    return "live" if endpoint.livemode else "test"


@login_required
def webhooks(request: AuthenticatedHttpRequest) -> HttpResponse:
    mode = _mode(request)
    livemode = mode == "live"
    endpoints = list(selectors.endpoints_of(user=request.user, livemode=livemode))
    context = {
        "mode": mode,
        "endpoints": endpoints,
        "deliveries": selectors.deliveries_recent(user=request.user, livemode=livemode),
        "form": EndpointForm(initial={"mode": mode, "enabled_events": services.EVENT_TYPES}),
        "revealed": request.session.pop(_REVEALED, None),
        "job_secret": services.job_webhook_secret(user=request.user, livemode=livemode),
        "now": timezone.now(),
    }
    return render(request, "dashboard/webhooks.html", context)


@login_required
@require_POST
def endpoint_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    mode = _mode(request)
    if not form.is_valid():
        messages.error(request, "Give an http(s) URL and at least one event type.")
        return _back(mode)
    data = form.cleaned_data
    try:
        endpoint = services.endpoint_create(
            user=request.user,
            livemode=data["mode"] == "live",
            url=data["url"],
            enabled_events=data["enabled_events"],
            description=data["description"],
        )
    except ApiError as err:
        messages.error(request, err.message)
        return _back(mode)
    request.session[_REVEALED] = {"endpoint_id": endpoint.id, "secret": endpoint.secret}
    messages.success(request, "Endpoint added. Copy its signing secret now: it is shown once.")
    return _back(_mode_of(endpoint))


@login_required
@require_POST
def endpoint_toggle(request: AuthenticatedHttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    services.endpoint_update(endpoint=endpoint, disabled=not endpoint.disabled)
    state = "disabled" if endpoint.disabled else "enabled"
    messages.success(request, f"Endpoint {endpoint.url} {state}.")
    return _back(_mode_of(endpoint))


@login_required
@require_POST
def endpoint_roll(request: AuthenticatedHttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = services.endpoint_roll_secret(endpoint=_endpoint_or_404(request, endpoint_id))
    request.session[_REVEALED] = {"endpoint_id": endpoint.id, "secret": endpoint.secret}
    messages.success(request, "New signing secret made: the old one no longer signs.")
    return _back(_mode_of(endpoint))


@login_required
@require_POST
def endpoint_delete(request: AuthenticatedHttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {endpoint.url} deleted.")
    return _back(_mode_of(endpoint))


def sample_job(*, livemode: bool) -> dict:
    """A finished job of the pro tier, as a test event carries it (its URLs lead nowhere)."""
    now = timezone.now()
    prefix = "job_" if livemode else "job_test_"
    job = Job(
        id=f"{prefix}sample_event",
        livemode=livemode,
        tier="pro",
        filename="sample.wav",
        status=Job.Status.SUCCEEDED,
        progress=100,
        created=now - timedelta(seconds=2),
        completed_at=now,
        expires_at=now + timedelta(seconds=settings.BTRO_RESULT_TTL_SECONDS),
        result=test_result("pro"),
        download_token="sample",
    )
    return job_object(job)


@login_required
@require_POST
def endpoint_test(request: AuthenticatedHttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_404(request, endpoint_id)
    services.event_send_sample(endpoint=endpoint, job=sample_job(livemode=endpoint.livemode))
    messages.success(request, f"Test event sent to {endpoint.url}: see the deliveries below.")
    return _back(_mode_of(endpoint))


@login_required
@require_POST
def delivery_resend(request: AuthenticatedHttpRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = selectors.delivery_get(user=request.user, delivery_id=delivery_id)
    except NotFound:
        raise Http404("No such delivery.") from None
    services.delivery_resend(delivery=delivery)
    messages.success(request, f"Sending {delivery.event_id} again.")
    return _back(_mode_of(delivery.endpoint))
