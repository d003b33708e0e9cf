from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    """One separation job. Test jobs are stored finished, with `completed_at` 2 s ahead;
    the API shows them queued until then (see selectors.job_view)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Type(models.TextChoices):
        SPLITTER = "splitter"

    id = models.CharField(primary_key=True, max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    livemode = models.BooleanField()
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.SPLITTER)
    tier = models.CharField(max_length=20)
    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=4, default="wav")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error_type = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)  # the caller's own key/value pairs

    input_name = models.CharField(max_length=255, blank=True)  # the upload, in storage
    # A file_url job's input: the worker fetches it into input_name before separating it.
    source_url = models.CharField(max_length=2048, blank=True)
    input_bytes = models.BigIntegerField(default=0)
    duration = models.FloatField(default=0)  # seconds of audio in the upload
    cost = models.IntegerField(default=0)
    download_token = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)  # the worker run that owns the job
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # DELETE /v1/jobs/:id: then 410

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["user", "livemode", "-created"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["expires_at", "purged_at"]),
        ]

    def __str__(self) -> str:
        return self.id


JOB_TYPES = tuple(Job.Type.values)  # for the OpenAPI document's enum names (SPECTACULAR_SETTINGS)


class IdempotencyRecord(models.Model):
    """The first answer to a POST with an Idempotency-Key, replayed for 24 hours."""

    TTL = timedelta(hours=24)  # then the sweep deletes it

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    livemode = models.BooleanField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True)  # None while in progress
    response_body = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "livemode", "key"], name="one_record_per_key")
        ]
        indexes = [models.Index(fields=["created"])]

    def __str__(self) -> str:
        return self.key
