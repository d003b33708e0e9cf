"""Events (the outbox, written with the job's last state change), the endpoints they go to,
and one delivery per event and endpoint, retried until it succeeds or its time runs out."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Event(models.Model):
    class Type(models.TextChoices):
        JOB_SUCCEEDED = "job.succeeded"
        JOB_FAILED = "job.failed"

    id = models.CharField(primary_key=True, max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    livemode = models.BooleanField()
    type = models.CharField(max_length=40, choices=Type.choices)
    # When it happened; a test job's event is written at creation and due 2 s later.
    created = models.DateTimeField(default=timezone.now)
    job_id = models.CharField(max_length=40, db_index=True)
    data = models.JSONField()  # {"object": the job as the API showed it}
    # Sent by the dashboard's "Send test event" to one endpoint; never listed.
    sample = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "livemode", "-created"])]

    def __str__(self) -> str:
        return self.id


class WebhookEndpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    livemode = models.BooleanField()
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True)
    enabled_events = models.JSONField(default=list)  # event types, or ["*"]
    secret = models.CharField(max_length=80)  # kept in clear: every delivery is signed with it
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Since when every delivery has failed (None after a success): 3 days of it disables.
    failing_since = models.DateTimeField(null=True, blank=True)
    # A job's own `webhook` URL: that job's events only, never listed among the endpoints.
    job_id = models.CharField(max_length=40, blank=True, db_index=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "livemode", "-created"])]

    def __str__(self) -> str:
        return self.id


class Delivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # retried for BTRO_WEBHOOK_RETRY_FOR_SECONDS, or its endpoint disabled

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # None once it is over
    sent_at = models.DateTimeField(null=True, blank=True)  # its last message to the broker
    locked_until = models.DateTimeField(null=True, blank=True)  # an attempt in flight
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The last attempt: its HTTP status (None: no answer), time taken, and what came back.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_endpoint")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}"


class JobWebhookSecret(models.Model):
    """The secret that signs the deliveries to jobs' own `webhook` URLs, one per mode."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    livemode = models.BooleanField()
    secret = models.CharField(max_length=80)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "livemode"], name="one_job_secret_per_mode")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.livemode}"
