"""/v1/webhook_endpoints, /v1/events and /v1/webhook_secret: parse, call, serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.apis import api_key
from jobs.idempotency import idempotent
from jobs.parameters import ApiViewSet, accepts
from jobs.throttles import ReadThrottle, WriteThrottle

from . import selectors, services
from .serializers import (
    EndpointListQuerySerializer,
    EventListQuerySerializer,
    EventListSerializer,
    EventSerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointDeletedSerializer,
    WebhookEndpointListSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookSecretSerializer,
    form_input,
)

ID = OpenApiParameter("id", str, OpenApiParameter.PATH)


def _parsed(serializer_class: type, data: Any) -> dict:
    serializer = serializer_class(data=form_input(data))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WebhookEndpointViewSet(ApiViewSet):
    throttles_by_action = {
        "create": [WriteThrottle],
        "update": [WriteThrottle],
        "destroy": [WriteThrottle],
        "roll_secret": [WriteThrottle],
    }

    def _endpoint(self, request: Request, pk: str):
        key = api_key(request)
        return selectors.endpoint_get(user=key.user, livemode=key.livemode, endpoint_id=pk)

    @extend_schema(responses=WebhookEndpointListSerializer, summary="List webhook endpoints")
    @accepts(query=EndpointListQuerySerializer)
    def list(self, request: Request) -> Response:
        query = _parsed(EndpointListQuerySerializer, request.query_params)
        key = api_key(request)
        endpoints, has_more = selectors.endpoint_list(user=key.user, livemode=key.livemode, **query)
        return Response(
            {
                "object": "list",
                "data": WebhookEndpointSerializer(endpoints, many=True).data,
                "has_more": has_more,
                "url": "/v1/webhook_endpoints",
            }
        )

    @extend_schema(
        responses={201: WebhookEndpointSerializer},
        summary="Create a webhook endpoint",
        description="The answer holds the signing secret (whsec_…): it is shown only here "
        "and when the secret is rolled.",
    )
    @accepts(body=WebhookEndpointCreateSerializer)
    @idempotent
    def create(self, request: Request) -> Response:
        data = _parsed(WebhookEndpointCreateSerializer, request.data)
        key = api_key(request)
        endpoint = services.endpoint_create(user=key.user, livemode=key.livemode, **data)
        body = WebhookEndpointSerializer(endpoint, context={"reveal_secret": True}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ID], responses=WebhookEndpointSerializer, summary="Retrieve an endpoint"
    )
    @accepts()
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(WebhookEndpointSerializer(self._endpoint(request, pk)).data)

    @extend_schema(
        parameters=[ID],
        responses=WebhookEndpointSerializer,
        summary="Update a webhook endpoint",
        operation_id="webhook_endpoints_update",
    )
    @accepts(body=WebhookEndpointUpdateSerializer)
    @idempotent
    def update(self, request: Request, pk: str) -> Response:
        endpoint = self._endpoint(request, pk)
        data = _parsed(WebhookEndpointUpdateSerializer, request.data)
        endpoint = services.endpoint_update(endpoint=endpoint, **data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        parameters=[ID],
        responses=WebhookEndpointDeletedSerializer,
        summary="Delete a webhook endpoint",
    )
    @accepts()
    def destroy(self, request: Request, pk: str) -> Response:
        endpoint = self._endpoint(request, pk)
        services.endpoint_delete(endpoint=endpoint)
        return Response({"id": pk, "object": "webhook_endpoint", "deleted": True})

    @extend_schema(
        parameters=[ID],
        responses=WebhookEndpointSerializer,
        summary="Roll an endpoint's signing secret",
        description="A new whsec_… secret signs every delivery from now on; the answer is "
        "the only place it is shown.",
    )
    @accepts()
    @idempotent
    def roll_secret(self, request: Request, pk: str) -> Response:
        endpoint = self._endpoint(request, pk)
        endpoint = services.endpoint_roll_secret(endpoint=endpoint)
        return Response(WebhookEndpointSerializer(endpoint, context={"reveal_secret": True}).data)


class EventViewSet(ApiViewSet):
    throttles_by_action = {"list": [ReadThrottle], "retrieve": [ReadThrottle]}

    @extend_schema(
        responses=EventListSerializer,
        summary="List events",
        description="The last 30 days of the key's mode, newest first.",
    )
    @accepts(query=EventListQuerySerializer)
    def list(self, request: Request) -> Response:
        query = _parsed(EventListQuerySerializer, request.query_params)
        key = api_key(request)
        events, has_more = selectors.event_list(user=key.user, livemode=key.livemode, **query)
        return Response(
            {
                "object": "list",
                "data": EventSerializer(events, many=True).data,
                "has_more": has_more,
                "url": "/v1/events",
            }
        )

    @extend_schema(parameters=[ID], responses=EventSerializer, summary="Retrieve an event")
    @accepts()
    def retrieve(self, request: Request, pk: str) -> Response:
        key = api_key(request)
        event = selectors.event_get(user=key.user, livemode=key.livemode, event_id=pk)
        return Response(EventSerializer(event).data)

    @extend_schema(responses=WebhookSecretSerializer, summary="Retrieve the job webhook secret")
    @accepts()
    def job_secret(self, request: Request) -> Response:
        """The secret that signs deliveries to the `webhook` URL given to POST /v1/jobs."""
        key = api_key(request)
        secret = services.job_webhook_secret(user=key.user, livemode=key.livemode)
        return Response({"object": "webhook_secret", "livemode": key.livemode, "secret": secret})
