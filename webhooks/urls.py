from django.urls import path

from btro import converters  # noqa: F401 (registers <id:…>)

from .apis import EventViewSet, WebhookEndpointViewSet

app_name = "webhooks"
endpoint_list = WebhookEndpointViewSet.as_view({"get": "list", "post": "create"})
endpoint_detail = WebhookEndpointViewSet.as_view(
    {"get": "retrieve", "post": "update", "delete": "destroy"}
)
endpoint_roll = WebhookEndpointViewSet.as_view({"post": "roll_secret"})
event_list = EventViewSet.as_view({"get": "list"})
event_detail = EventViewSet.as_view({"get": "retrieve"})
job_secret = EventViewSet.as_view({"get": "job_secret"})

urlpatterns = [
    path("webhook_endpoints", endpoint_list, name="endpoint-list"),
    path("webhook_endpoints/<id:pk>", endpoint_detail, name="endpoint-detail"),
    path("webhook_endpoints/<id:pk>/roll_secret", endpoint_roll, name="endpoint-roll"),
    path("events", event_list, name="event-list"),
    path("events/<id:pk>", event_detail, name="event-detail"),
    path("webhook_secret", job_secret, name="job-secret"),
]
