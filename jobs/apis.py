"""/v1/jobs: parse the input, call a service, serialize the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from accounts.selectors import credit_balance

from . import selectors, services
from .idempotency import idempotent
from .separation import TIERS
from .serializers import (
    BalanceSerializer,
    JobCreateSerializer,
    JobListQuerySerializer,
    JobListSerializer,
    JobSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)
from .throttles import CreateThrottle, PollThrottle, ReadThrottle, ThrottledByAction
from .uploads import UploadParser, check_body_framing, limit_upload_size


def api_key(request: Request) -> ApiKey:
    """The key that authenticated the request: every /v1/jobs action requires one."""
    return cast(ApiKey, request.auth)


class JobViewSet(ThrottledByAction, viewsets.ViewSet):
    parser_classes = [UploadParser]
    throttles_by_action = {
        "list": [ReadThrottle],
        "retrieve": [ReadThrottle, PollThrottle],
        "create": [CreateThrottle],
    }

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        if request.method == "POST":  # before anything reads the body
            check_body_framing(request._request)
            limit_upload_size(request._request)

    @extend_schema(
        parameters=[JobListQuerySerializer],
        responses=JobListSerializer,
        summary="List jobs",
    )
    def list(self, request: Request) -> Response:
        query = JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        key = api_key(request)
        jobs, has_more = selectors.job_list(
            user=key.user, livemode=key.livemode, **query.validated_data
        )
        data = JobSerializer(jobs, many=True, context={"request": request}).data
        return Response({"object": "list", "data": data, "has_more": has_more, "url": "/v1/jobs"})

    @extend_schema(
        request={"multipart/form-data": JobCreateSerializer},
        responses={201: JobSerializer},
        summary="Create a job",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        key = api_key(request)
        job = services.job_create(
            user=key.user,
            livemode=key.livemode,
            upload=request.FILES.get("file"),
            tier=request.data.get("tier"),
            type=request.data.get("type"),
            format=request.data.get("format"),
            webhook=request.data.get("webhook"),
        )
        body = JobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH)],
        responses=JobSerializer,
        summary="Retrieve a job",
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        key = api_key(request)
        job = selectors.job_get(user=key.user, livemode=key.livemode, job_id=pk)
        return Response(JobSerializer(job, context={"request": request}).data)


class AccountViewSet(ThrottledByAction, viewsets.ViewSet):
    """/v1/balance and /v1/usage: the key's account, as the dashboard's Usage page shows it."""

    throttles_by_action = {"balance": [ReadThrottle], "usage": [ReadThrottle]}

    @extend_schema(responses=BalanceSerializer, summary="Retrieve the balance")
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

    @extend_schema(
        parameters=[UsageQuerySerializer], responses=UsageSerializer, summary="List usage"
    )
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
