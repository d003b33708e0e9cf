"""/v1/jobs: parse the input, call a service, serialize the answer."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey

from . import selectors, services
from .idempotency import idempotent
from .serializers import (
    JobCreateSerializer,
    JobListQuerySerializer,
    JobListSerializer,
    JobSerializer,
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
