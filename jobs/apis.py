"""/v1/jobs: parse the input, call a service, serialize the answer."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from . import idempotency, selectors, services
from .serializers import (
    JobCreateSerializer,
    JobListQuerySerializer,
    JobListSerializer,
    JobSerializer,
)
from .throttles import CreateThrottle, PollThrottle, ReadThrottle, ThrottledByAction
from .uploads import UploadParser, check_body_framing, limit_upload_size


class JobViewSet(ThrottledByAction, viewsets.ViewSet):
    parser_classes = [UploadParser]
    throttles_by_action = {
        "list": [ReadThrottle],
        "retrieve": [ReadThrottle, PollThrottle],
        "create": [CreateThrottle],
    }

    @extend_schema(
        parameters=[JobListQuerySerializer],
        responses=JobListSerializer,
        summary="List jobs",
    )
    def list(self, request: Request) -> Response:
        query = JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        jobs, has_more = selectors.job_list(
            user=request.user, livemode=request.auth.livemode, **query.validated_data
        )
        data = JobSerializer(jobs, many=True, context={"request": request}).data
        return Response({"object": "list", "data": data, "has_more": has_more, "url": "/v1/jobs"})

    @extend_schema(
        request={"multipart/form-data": JobCreateSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    "Retry safely: the first answer to a key is replayed for 24 h; "
                    "a 5xx, 409 or 429 is not, so a retry runs again."
                ),
            )
        ],
        responses={201: JobSerializer},
        summary="Create a job",
    )
    def create(self, request: Request) -> Response:
        check_body_framing(request._request)
        limit_upload_size(request._request)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self._create(request)
        upload = request.FILES.get("file")
        params = {name: request.data.get(name) for name in ("tier", "type", "format")}
        record, replay = idempotency.idempotency_begin(
            api_key=request.auth,
            key=key,
            fingerprint=idempotency.idempotency_fingerprint(params=params, upload=upload),
        )
        if replay is not None:
            return Response(
                replay.body, status=replay.status, headers={"Idempotent-Replayed": "true"}
            )
        response = None
        try:
            try:
                response = self._create(request)
            except Exception as exc:
                response = self.handle_exception(exc)
        finally:  # with no response (a crash), the key is released
            idempotency.idempotency_finish(record=record, response=response)
        return response

    def _create(self, request: Request) -> Response:
        job = services.job_create(
            user=request.user,
            livemode=request.auth.livemode,
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
        job = selectors.job_get(user=request.user, livemode=request.auth.livemode, job_id=pk)
        return Response(JobSerializer(job, context={"request": request}).data)
