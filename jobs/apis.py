"""/v1/jobs: parse the input, call a service, serialize the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from accounts.selectors import credit_balance
from btro.errors import InvalidParameter

from . import selectors, services
from .idempotency import idempotent
from .parameters import FORM, MULTIPART, ApiViewSet, StrictParameters, accepts, bracket_values
from .separation import TIERS
from .serializers import (
    BalanceSerializer,
    DeletedJobSerializer,
    JobCreateFromUrlSerializer,
    JobCreateSerializer,
    JobListQuerySerializer,
    JobListSerializer,
    JobSerializer,
    JobUpdateSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)
from .throttles import CreateThrottle, PollThrottle, ReadThrottle, WriteThrottle

JOB_ID = OpenApiParameter("id", str, OpenApiParameter.PATH)


def api_key(request: Request) -> ApiKey:
    """The key that authenticated the request: every /v1/jobs action requires one."""
    return cast(ApiKey, request.auth)


class JobViewSet(ApiViewSet):
    throttles_by_action = {
        "list": [ReadThrottle],
        "retrieve": [ReadThrottle, PollThrottle],
        "create": [CreateThrottle],
        "cancel": [WriteThrottle],
        "destroy": [WriteThrottle],
        "update": [WriteThrottle],
    }

    @extend_schema(responses=JobListSerializer, summary="List jobs")
    @accepts(query=JobListQuerySerializer)
    def list(self, request: Request) -> Response:
        query = JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        key = api_key(request)
        now = timezone.now()  # one instant for the status filter and the status shown
        jobs, has_more = selectors.job_list(
            user=key.user, livemode=key.livemode, now=now, **query.validated_data
        )
        views = [selectors.job_view(job=job, now=now) for job in jobs]
        data = JobSerializer(views, many=True, context={"request": request}).data
        return Response({"object": "list", "data": data, "has_more": has_more, "url": "/v1/jobs"})

    @extend_schema(responses={201: JobSerializer}, summary="Create a job")
    @accepts(
        body=JobCreateSerializer,
        media_types=(MULTIPART, FORM),  # an upload first: the document's main form
        documented={FORM: JobCreateFromUrlSerializer},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        key = api_key(request)
        upload = request.FILES.get("file")
        if upload is None and "file" in request.data:
            raise InvalidParameter(
                "'file' must be a file part of multipart/form-data (or send file_url).",
                param="file",
            )
        job = services.job_create(
            user=key.user,
            livemode=key.livemode,
            upload=upload,
            tier=request.data.get("tier"),
            type=request.data.get("type"),
            format=request.data.get("format"),
            metadata=bracket_values(request.data, "metadata")[0],
            file_url=request.data.get("file_url"),
            webhook=request.data.get("webhook"),
        )
        body = JobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[JOB_ID], responses=JobSerializer, summary="Retrieve a job")
    @accepts()
    def retrieve(self, request: Request, pk: str) -> Response:
        key = api_key(request)
        job = selectors.job_get(user=key.user, livemode=key.livemode, job_id=pk)
        return Response(JobSerializer(job, context={"request": request}).data)

    @extend_schema(
        parameters=[JOB_ID],
        request=None,
        responses=JobSerializer,
        summary="Cancel a job",
        description="A queued job never starts; a running job's separation is stopped within "
        "seconds. The job ends `failed` with `error.type` `canceled`, and its credits are "
        "refunded. Canceling a canceled job answers it again; any other ended job is a 400.",
    )
    @idempotent
    def cancel(self, request: Request, pk: str) -> Response:
        key = api_key(request)
        job = selectors.job_get(user=key.user, livemode=key.livemode, job_id=pk)
        job = services.job_cancel(job=job)
        return Response(JobSerializer(job, context={"request": request}).data)

    @extend_schema(
        parameters=[JOB_ID],
        responses={200: DeletedJobSerializer},
        summary="Delete a job",
        description="Cancels the job if it is still queued or running, then deletes its upload "
        "and stems from storage at once. From then on the job, its stem URLs and another "
        "DELETE answer 410. Safe to retry as it is (no Idempotency-Key needed, as in Stripe).",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        key = api_key(request)
        job = selectors.job_get(user=key.user, livemode=key.livemode, job_id=pk)
        services.job_delete(job=job)
        return Response({"id": job.id, "object": "job", "deleted": True})

    @extend_schema(
        operation_id="jobs_update",
        parameters=[JOB_ID],
        responses=JobSerializer,
        summary="Update a job",
    )
    @accepts(body=JobUpdateSerializer)
    @idempotent
    def update(self, request: Request, pk: str) -> Response:
        """Change the job's metadata: the keys sent are set (or, empty, removed), the
        others kept; `metadata=` (empty) removes them all first."""
        key = api_key(request)
        job = selectors.job_get(user=key.user, livemode=key.livemode, job_id=pk)
        changes, clear = bracket_values(request.data, "metadata")
        job = services.job_metadata_update(job=job, changes=changes, clear=clear)
        return Response(JobSerializer(job, context={"request": request}).data)


class AccountViewSet(ApiViewSet):
    """/v1/balance and /v1/usage: the key's account, as the dashboard's Usage page shows it."""

    throttles_by_action = {"balance": [ReadThrottle], "usage": [ReadThrottle]}

    @extend_schema(responses=BalanceSerializer, summary="Retrieve the balance")
    @accepts()
    def balance(self, request: Request) -> Response:
        """Credits available to live jobs (a test key sees them too, read-only) and the
        price of each tier, so a job can be priced before it is sent."""
        key = api_key(request)
        prices = settings.BTRO_CREDITS_PER_MINUTE
        return Response(
            {
                "object": "balance",
                "available": credit_balance(user=key.user),
                "livemode": key.livemode,
                "prices": {tier: prices[tier] for tier in TIERS if tier in prices},
                "unit": "credits per started minute of audio",
            }
        )

    @extend_schema(responses=UsageSerializer, summary="List usage")
    @accepts(query=UsageQuerySerializer)
    def usage(self, request: Request) -> Response:
        """Minutes of audio and credits by UTC day and tier for the jobs created between
        start and end in the key's mode, as the dashboard's Usage chart counts them."""
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        key = api_key(request)
        user, livemode = key.user, key.livemode
        since, until = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        minutes = selectors.job_minutes_by_day(
            user=user, livemode=livemode, since=since, until=until
        )
        credits = selectors.job_credits_by_day(
            user=user, livemode=livemode, since=since, until=until
        )
        data = [
            {
                "date": day.isoformat(),
                "tier": tier,
                "minutes": round(minutes.get((day, tier), 0.0), 2),
                "credits": credits.get((day, tier), 0),
            }
            for day, tier in sorted(minutes.keys() | credits.keys())
            if minutes.get((day, tier)) or credits.get((day, tier))
        ]
        body = {"object": "usage", "livemode": key.livemode, "start": start, "end": end}
        return Response({**body, "data": data})


class OpenApiView(StrictParameters, SpectacularJSONAPIView):
    """/v1/openapi.json: the document takes no parameter either."""
