"""The Event and WebhookEndpoint objects as the API shows them, and the inputs of their routes."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from jobs.serializers import JobSerializer, PageQuerySerializer

from .models import Event, WebhookEndpoint
from .services import ALL_EVENTS, EVENT_TYPES, event_object

EVENT_CHOICES = [*EVENT_TYPES, ALL_EVENTS]
LIST_FIELDS = ("enabled_events",)


def form_input(data: Any) -> Any:
    """A form as a plain dict, Stripe's `enabled_events[]=…` and a repeated
    `enabled_events=…` both read as one list."""
    if not isinstance(data, QueryDict):
        return data
    plain: dict[str, Any] = {}
    for name, values in data.lists():
        values = [value for value in values if isinstance(value, str)]  # no files
        base = name[:-2] if name.endswith("[]") else name
        if base in LIST_FIELDS:
            plain.setdefault(base, []).extend(values)
        elif values:
            plain[name] = values[-1]
    return plain


class EventDataSerializer(serializers.Serializer):
    object = JobSerializer(help_text="The job as the API showed it when the event happened.")


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="evt_…; receivers drop a repeated id.")
    object = serializers.CharField(read_only=True, default="event")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    created = serializers.IntegerField(help_text="When it happened, in Unix seconds.")
    livemode = serializers.BooleanField()
    data = EventDataSerializer()  # type: ignore[assignment]

    def to_representation(self, instance: Event) -> dict:
        return event_object(instance)


@extend_schema_serializer(many=False)
class EventListSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="list")
    data = EventSerializer(many=True)  # type: ignore[assignment]
    has_more = serializers.BooleanField()
    url = serializers.CharField()


class EndpointListQuerySerializer(PageQuerySerializer):
    """A page, newest first, with the cursors of /v1/jobs."""


class EventListQuerySerializer(EndpointListQuerySerializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES, required=False)


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(read_only=True, default="webhook_endpoint")
    url = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    enabled_events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    status = serializers.ChoiceField(choices=["enabled", "disabled"])
    disabled_reason = serializers.CharField(allow_null=True)
    livemode = serializers.BooleanField()
    created = serializers.IntegerField()
    secret = serializers.CharField(
        required=False, help_text="whsec_…: only in the answer to a create or a secret roll."
    )

    def to_representation(self, instance: WebhookEndpoint) -> dict:
        body = {
            "id": instance.id,
            "object": "webhook_endpoint",
            "url": instance.url,
            "description": instance.description,
            "enabled_events": instance.enabled_events,
            "status": "disabled" if instance.disabled else "enabled",
            "disabled_reason": instance.disabled_reason or None,
            "livemode": instance.livemode,
            "created": int(instance.created.timestamp()),
        }
        if self.context.get("reveal_secret"):
            body["secret"] = instance.secret
        return body


@extend_schema_serializer(many=False)
class WebhookEndpointListSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="list")
    data = WebhookEndpointSerializer(many=True)  # type: ignore[assignment]
    has_more = serializers.BooleanField()
    url = serializers.CharField()


class WebhookEndpointDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(read_only=True, default="webhook_endpoint")
    deleted = serializers.BooleanField(default=True)


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2048, help_text="http(s); its host must resolve to a public address."
    )
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        allow_empty=False,
        max_length=len(EVENT_CHOICES),
        help_text="The event types to send, or ['*'] for all. As a form: "
        "enabled_events[]=job.succeeded&enabled_events[]=job.failed.",
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2048, required=False)
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        allow_empty=False,
        max_length=len(EVENT_CHOICES),
        required=False,
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    disabled = serializers.BooleanField(
        required=False, help_text="true stops deliveries; false enables the endpoint again."
    )


class WebhookSecretSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="webhook_secret")
    livemode = serializers.BooleanField()
    secret = serializers.CharField(
        help_text="whsec_…: signs the deliveries to the `webhook` URLs of this mode's jobs."
    )
