"""The Job object as the API shows it, and the inputs of the /v1/jobs actions."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from .models import Job
from .parameters import BracketNames
from .representation import job_object
from .selectors import JobView
from .separation import TIERS
from .separation.audio import FORMATS
from .services.metadata import (
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LENGTH,
)


class StemSerializer(serializers.Serializer):
    url = serializers.URLField()
    bytes = serializers.IntegerField()
    duration = serializers.FloatField()


class ResultSerializer(serializers.Serializer):
    engine = serializers.CharField()
    format = serializers.ChoiceField(choices=FORMATS)
    sample_rate = serializers.IntegerField()
    stems = serializers.DictField(child=StemSerializer())


class JobErrorSerializer(serializers.Serializer):
    type = serializers.CharField()
    message = serializers.CharField()


def metadata_field(help_text: str, **kwargs) -> serializers.DictField:
    """Key/value strings; as a request field, the form's `metadata[key]=value` pairs."""
    limits = (
        f" At most {METADATA_MAX_KEYS} keys of up to {METADATA_MAX_KEY_LENGTH} characters, "
        f"values of up to {METADATA_MAX_VALUE_LENGTH}."
    )
    return serializers.DictField(
        child=serializers.CharField(max_length=METADATA_MAX_VALUE_LENGTH, allow_blank=True),
        help_text=help_text + limits,
        **kwargs,
    )


class JobSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(read_only=True, default="job")
    livemode = serializers.BooleanField()
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=Job.Status.values)
    tier = serializers.ChoiceField(choices=TIERS)
    filename = serializers.CharField()
    created = serializers.IntegerField()
    completed_at = serializers.IntegerField(allow_null=True)
    expires_at = serializers.IntegerField(allow_null=True)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    error = JobErrorSerializer(allow_null=True)
    result = ResultSerializer(allow_null=True)
    metadata = metadata_field("Your own key/value pairs, as set at creation or by update.")

    def to_representation(self, instance: Job | JobView) -> dict:
        request = self.context.get("request")
        if request is None:
            return job_object(instance)
        return job_object(instance, absolute=request.build_absolute_uri)


@extend_schema_serializer(many=False)  # the list action answers one list object, not an array
class JobListSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="list")
    # A declared field, not the .data property: the serializer metaclass takes it off the class.
    data = JobSerializer(many=True)  # type: ignore[assignment]
    has_more = serializers.BooleanField()
    url = serializers.CharField()


class DeletedJobSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(read_only=True, default="job")
    deleted = serializers.BooleanField(default=True)


@extend_schema_field(OpenApiTypes.BINARY)  # a plain FileField is documented as a URI string
class UploadField(serializers.FileField):
    pass


class JobCreateFromUrlSerializer(serializers.Serializer):
    """Documents the URL-encoded form, which has no file; validation happens in
    services.job_create."""

    file_url = serializers.URLField(
        required=False,
        max_length=2048,
        help_text="Instead of file: an http(s) URL of the audio, which the worker downloads "
        "(redirects followed up to 3; the upload size limit applies). A download that fails "
        "ends the job failed with error.type fetch_error.",
    )
    tier = serializers.ChoiceField(choices=TIERS)
    type = serializers.ChoiceField(
        choices=Job.Type.values, required=False, default=Job.Type.SPLITTER
    )
    format = serializers.ChoiceField(choices=FORMATS, required=False, default="wav")
    webhook = serializers.URLField(
        required=False,
        help_text="A URL that gets this job's event (job.succeeded or job.failed), signed "
        "with the mode's job webhook secret (GET /v1/webhook_secret).",
    )
    metadata = metadata_field(
        "Your own key/value pairs, sent as metadata[key]=value.", required=False
    )


class JobCreateSerializer(JobCreateFromUrlSerializer):
    """Documents the multipart form and declares the fields of both (jobs.parameters):
    exactly one of file and file_url."""

    file = UploadField(
        required=False, help_text="The audio file: WAV, FLAC, MP3, OGG or M4A. Or file_url."
    )


class JobUpdateSerializer(serializers.Serializer):
    """POST /v1/jobs/:id changes metadata only."""

    metadata = metadata_field(
        "metadata[key]=value sets a key, metadata[key]= (empty) removes it, and metadata= "
        "(empty) removes them all; the other keys are kept.",
        required=False,
    )


# Unix seconds from 1970 to the end of year 9999, the range a database datetime holds.
LAST_TIMESTAMP = 253402300799


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(min(seconds, LAST_TIMESTAMP), UTC)


class PageQuerySerializer(serializers.Serializer):
    """A page of a list, newest first, with Stripe's cursors: every list of /v1 takes these."""

    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=10)
    starting_after = serializers.CharField(required=False)
    ending_before = serializers.CharField(required=False)

    def validate(self, attrs: dict) -> dict:
        for cursor in ("starting_after", "ending_before"):
            # A form's empty value reads as absent to DRF; the document says minLength 1.
            if self.initial_data.get(cursor) == "":
                raise serializers.ValidationError({cursor: "An object id, not empty."})
        if attrs.get("starting_after") and attrs.get("ending_before"):
            raise serializers.ValidationError(
                {"ending_before": "Use starting_after or ending_before, not both."}
            )
        return attrs


def unix_seconds(help_text: str) -> serializers.IntegerField:
    """An optional query parameter in Unix seconds, within the dates the API can show."""
    return serializers.IntegerField(
        min_value=0, max_value=LAST_TIMESTAMP, required=False, help_text=help_text
    )


class JobListQuerySerializer(BracketNames, PageQuerySerializer):
    status = serializers.ChoiceField(
        choices=Job.Status.values, required=False, help_text="Only jobs showing this status now."
    )
    tier = serializers.ChoiceField(choices=TIERS, required=False)
    created__gte = unix_seconds("Only jobs created at or after this Unix time (seconds).")
    created__lte = unix_seconds("Only jobs created at or before this Unix time (seconds).")

    def validate(self, attrs: dict) -> dict:
        """The arguments of selectors.job_list."""
        attrs = super().validate(attrs)
        gte, lte = attrs.pop("created__gte", None), attrs.pop("created__lte", None)
        if gte is not None:
            attrs["created_gte"] = _moment(gte)
        if lte is not None:  # `created` shows whole seconds: all of that second is in
            attrs["created_lt"] = _moment(lte + 1)
        return attrs


class BalanceSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="balance")
    available = serializers.IntegerField(help_text="Credits available to live jobs.")
    livemode = serializers.BooleanField()
    prices = serializers.DictField(
        child=serializers.IntegerField(), help_text="Credits per started minute, by tier."
    )
    unit = serializers.CharField(default="credits per started minute of audio")


USAGE_MAX_DAYS = 366


class UsageQuerySerializer(serializers.Serializer):
    start = unix_seconds("Unix seconds, inclusive. Default: 30 days before end.")
    end = unix_seconds("Unix seconds, exclusive. Default: now (the next whole second).")

    def validate(self, attrs: dict) -> dict:
        # The next whole second: a job created a moment ago is inside the default window.
        end = attrs.get("end", int(timezone.now().timestamp()) + 1)
        start = attrs.get("start", max(0, end - 30 * 86400))
        if end <= start:
            raise serializers.ValidationError({"end": "end must be after start."})
        if end - start > USAGE_MAX_DAYS * 86400:
            raise serializers.ValidationError(
                {"end": f"start and end may be at most {USAGE_MAX_DAYS} days apart."}
            )
        return {"start": start, "end": end}


class UsageDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The UTC day the jobs were created.")
    tier = serializers.ChoiceField(choices=TIERS)
    minutes = serializers.FloatField(help_text="Minutes of audio (failed jobs do not count).")
    credits = serializers.IntegerField(
        help_text="What the ledger charged for these jobs: cost + adjustment − refund. "
        "Always 0 in test mode."
    )


@extend_schema_serializer(many=False)
class UsageSerializer(serializers.Serializer):
    object = serializers.CharField(read_only=True, default="usage")
    livemode = serializers.BooleanField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    data = UsageDaySerializer(many=True)  # type: ignore[assignment]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents accounts' Bearer key authentication in the OpenAPI document."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret key, sk_test_… or sk_live_…, from the dashboard.",
        }
