"""The jobs list, a job's page with its players, the poll endpoint, and Try it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from btro.errors import ApiError, NotFound, PayloadTooLarge
from btro.errors.handlers import error_response
from jobs.models import Job
from jobs.selectors import job_get_for_owner, job_is_expired, job_search, job_view
from jobs.serializers import JobSerializer
from jobs.services import job_cancel, job_create, job_delete
from jobs.uploads import limit_upload_size

from ..forms import JobFilterForm, TryItForm
from ..quickstart import curl_create, curl_retrieve
from . import AuthenticatedHttpRequest

JOBS_PER_PAGE = 20
WAVEFORM_MAX_BYTES = 64 * 2**20  # bigger stems get a player but no waveform


def _job_or_404(request: AuthenticatedHttpRequest, job_id: str) -> Job:
    try:
        return job_get_for_owner(user=request.user, job_id=job_id)
    except NotFound:
        raise Http404("No such job.") from None


def job_rows(jobs: Iterable[Job], *, now: datetime) -> list[dict]:
    """Each job with what the API shows for it now, for the list tables."""
    return [
        {
            "job": job,
            "view": job_view(job=job, now=now),
            "expired": job_is_expired(job=job, now=now),
        }
        for job in jobs
    ]


@login_required
def job_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    now = timezone.now()
    key, value = form.metadata() if filters else (None, None)
    jobs = job_search(
        user=request.user,
        livemode=form.livemode() if filters else None,
        status=filters.get("status") or None,
        tier=filters.get("tier") or None,
        metadata_key=key,
        metadata_value=value,
        now=now,
    )
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    rows = job_rows(page, now=now)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "rows": rows, "query": query.urlencode()}
    return render(request, "dashboard/jobs.html", context)


@login_required
def job_detail(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    job = _job_or_404(request, job_id)
    now = timezone.now()
    view = job_view(job=job, now=now)
    body = JobSerializer(view, context={"request": request}).data
    expired = job_is_expired(job=job, now=now)
    stems = []
    if body["result"] and not expired and not job.deleted_at:
        stems = [
            {
                "name": name,
                "url": stem["url"],
                "bytes": stem["bytes"],
                "duration": stem["duration"],
                "waveform": stem["bytes"] <= WAVEFORM_MAX_BYTES,
            }
            for name, stem in body["result"]["stems"].items()
        ]
    context = {
        "job": job,
        "view": view,
        "expired": expired,
        "stems": stems,
        "metadata": sorted((job.metadata or {}).items()),
        "job_json": json.dumps(body, indent=2),
        "curl": curl_retrieve(request, job_id=job.id),
        "finished": view.status != Job.Status.QUEUED,
    }
    return render(request, "dashboard/job.html", context)


@login_required
def job_cancel_confirm(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    """GET asks for confirmation; POST cancels, as POST /v1/jobs/:id/cancel does."""
    job = _job_or_404(request, job_id)
    if request.method == "POST":
        try:
            job_cancel(job=job)
            messages.success(request, "Canceled. Its credits were refunded.")
        except ApiError as err:
            messages.error(request, err.message)
        return redirect("dashboard:job", job_id=job.id)
    return render(request, "dashboard/job_confirm.html", {"job": job, "action": "cancel"})


@login_required
def job_delete_confirm(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes, as DELETE /v1/jobs/:id does."""
    job = _job_or_404(request, job_id)
    if request.method == "POST":
        if job.deleted_at is None:
            job_delete(job=job)
        messages.success(request, f"Deleted {job.filename} ({job.id}) and its files.")
        return redirect("dashboard:jobs")
    return render(request, "dashboard/job_confirm.html", {"job": job, "action": "delete"})


@login_required
def job_poll(request: AuthenticatedHttpRequest, job_id: str) -> JsonResponse:
    """The Job object for the page's poller, with the browser session as credentials."""
    try:
        job = job_get_for_owner(user=request.user, job_id=job_id)
    except NotFound as error:
        return error_response(request, error)
    return JsonResponse(JobSerializer(job, context={"request": request}).data)


@csrf_exempt  # checked in _try_it, once the size limit is on the upload handlers
@login_required
def try_it(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _try_it_page(request, TryItForm())
    try:
        limit_upload_size(request)
        return _try_it_post(request)
    except PayloadTooLarge as err:
        return _try_it_page(request, TryItForm(), status=413, error=err.message)


@csrf_protect
def _try_it_post(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TryItForm(request.POST, request.FILES)
    if not form.is_valid():
        return _try_it_page(request, form, status=400)
    data = form.cleaned_data
    try:
        job = job_create(
            user=request.user,
            livemode=data["mode"] == "live",
            upload=data["file"],
            tier=data["tier"],
            format=data["format"],
        )
    except ApiError as err:
        form.add_error("file" if err.param == "file" else None, err.message)
        return _try_it_page(request, form, status=err.status)
    return redirect("dashboard:job", job_id=job.id)


def _try_it_page(
    request: HttpRequest, form: TryItForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    context = {
        "form": form,
        "form_error": error,
        "curl": curl_create(request),
        "max_mb": settings.BTRO_MAX_UPLOAD_BYTES // 2**20,
    }
    return render(request, "dashboard/try.html", context, status=status)
