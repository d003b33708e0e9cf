"""The OpenAPI document of /v1, as drf-spectacular generates it, turned into readable tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from drf_spectacular.generators import SchemaGenerator

from btro.errors import CATALOGUE

# What the schema does not say: the seed document's descriptions and the error shapes.
FIELD_NOTES = {
    "Job": {
        "id": "Unique identifier. Test job ids start with job_test_.",
        "object": 'Always "job".',
        "livemode": "true for a live key's job, false for a test key's.",
        "type": 'The kind of job; "splitter" is the only one today.',
        "status": "queued, succeeded or failed. Poll until it is not queued.",
        "tier": "The processing tier chosen at creation.",
        "filename": "The original name of the uploaded file, or the last segment of file_url.",
        "created": "Unix time (UTC) at which the job was created.",
        "completed_at": "Unix time at which it finished; null until then.",
        "expires_at": "Results are deleted at this time, 1 hour after completion; then 410.",
        "progress": "0 to 100 while it runs; 100 once finished.",
        "error": "{type, message} when the job failed; null otherwise.",
        "result": "Once succeeded: the engine, format, sample rate and one URL per stem.",
    },
    "JobCreate": {
        "file": "The audio (WAV, FLAC, MP3, OGG; M4A where ffmpeg is present), sent as "
        "multipart/form-data. Checked by content, not by name. Or file_url instead.",
        "file_url": "Instead of file: an http(s) URL of the audio, which the worker downloads "
        "(at most 3 redirects, public addresses only, the upload size limit, "
        "BTRO_FETCH_TIME_LIMIT_SECONDS). It may come in an application/x-www-form-urlencoded "
        "body. The job stays queued while it downloads; a download that fails ends it failed "
        "with error.type fetch_error. Charged by the audio decoded, at the worker.",
        "tier": "basic (vocals, instrumental), pro (vocals, drums, bass, other), studio "
        "(six stems), vocal_remover (instrumental, vocals).",
        "type": "Defaults to splitter, the only supported value.",
        "format": "The stems' file format.",
        "webhook": "Optional: a URL that gets this job's job.succeeded or job.failed event, "
        "signed with the mode's secret (GET /v1/webhook_secret).",
    },
    "Event": {
        "id": "evt_…, the same on every delivery of the event: drop a repeated id.",
        "type": "job.succeeded or job.failed (a canceled job fails with error.type canceled).",
        "created": "Unix time at which the job ended.",
        "data": "{object: the Job as GET /v1/jobs/:id showed it when it ended}.",
    },
    "WebhookEndpoint": {
        "url": "http(s); its host must resolve to a public address at delivery time.",
        "enabled_events": "The event types sent there, or * for all.",
        "status": "enabled or disabled (by you, or after 3 days in which every delivery failed).",
        "secret": "whsec_…, in the answer to a create or a roll only: verify BTRO-Signature "
        "with it.",
    },
    "Stem": {
        "url": "Download URL; unguessable, supports Range, expires with the job.",
        "bytes": "File size.",
        "duration": "Seconds of audio.",
    },
}
OBJECT_NOTES = {
    "Job": "The central resource: one asynchronous separation of one uploaded file.",
    "Result": "A succeeded job's output (job.result).",
    "Stem": "One separated stem (job.result.stems.<name>).",
    "Error": "Why a job failed (job.error). Failed requests use the error envelope below.",
    "JobList": "A page of jobs, newest first (GET /v1/jobs).",
    "Balance": "The account's credits and the price of each tier (GET /v1/balance).",
    "Usage": "Audio minutes and credits by day and tier, in the key's mode (GET /v1/usage).",
    "UsageDay": "One day and tier of usage (usage.data[]).",
    "Event": "A job's ending, sent to webhook endpoints and listed for 30 days (GET /v1/events). "
    "Each delivery is a POST of this object with a BTRO-Signature header: "
    't=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint\'s secret>.',
    "WebhookEndpoint": "A URL that receives the mode's events, signed with its own secret.",
    "WebhookSecret": "The secret that signs deliveries to jobs' own webhook URLs.",
}
# The envelope's types, from the one catalogue (also the OpenAPI document's and the README's).
ERRORS = [(error.type, error.code, str(error.status), error.when) for error in CATALOGUE]
ERROR_EXAMPLE = """{
  "error": {
    "type": "invalid_parameter",
    "code": "invalid_parameter",
    "message": "Invalid tier 'ultra'. Choose one of: basic, pro, studio, vocal_remover.",
    "param": "tier",
    "request_id": "req_3Vd9aQ1xZk2PbT"
  }
}"""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    where: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    anchor: str
    parameters: list[Field]
    body: list[Field]
    body_type: str
    responses: list[tuple[str, str]]
    error_codes: list[tuple[str, str]]  # status, when it happens


@dataclass(frozen=True)
class ObjectDoc:
    name: str
    description: str
    fields: list[Field] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    description: str
    endpoints: list[Endpoint]
    objects: list[ObjectDoc]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict, schemas: dict) -> str:
    """A short human type: string, integer, Job, enum of a | b, array of Job, map of Stem."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        target = schemas.get(name, {})
        if "enum" in target:
            return " | ".join(str(v) for v in target["enum"])
        return name
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0], schemas)
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}), schemas)}"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return f"map of {_type(schema['additionalProperties'], schemas)}"
    if schema.get("format") == "binary" or schema.get("format") == "uri":
        return "file" if schema.get("format") == "binary" else "string (URL)"
    return schema.get("type", "object")


def _describe(name: str, schema: dict, notes: dict[str, str]) -> str:
    parts = [notes.get(name) or schema.get("description", "")]
    if "default" in schema:
        parts.append(f"Default: {schema['default']}.")
    if schema.get("nullable"):
        parts.append("Nullable.")
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum") if k in schema]
    if bounds:
        parts.append(", ".join(bounds).capitalize() + ".")
    return " ".join(p for p in parts if p).strip()


def _fields(name: str, schemas: dict) -> list[Field]:
    schema = schemas.get(name, {})
    required = set(schema.get("required", []))
    notes = FIELD_NOTES.get(name, {})
    return [
        Field(
            name=prop,
            type="file" if name == "JobCreate" and prop == "file" else _type(sub, schemas),
            required=prop in required,
            description=_describe(prop, sub, notes),
        )
        for prop, sub in schema.get("properties", {}).items()
    ]


def reference_from_schema(schema: dict) -> Reference:
    schemas = schema.get("components", {}).get("schemas", {})
    endpoints = []
    for raw_path, operations in schema.get("paths", {}).items():
        path = raw_path.rstrip("/")  # the API answers with and without the trailing slash
        for method, op in operations.items():
            params = [
                Field(
                    name=p["name"],
                    type=_type(p.get("schema", {}), schemas),
                    required=bool(p.get("required")),
                    description=_describe(
                        p["name"], p.get("schema", {}), {p["name"]: p.get("description", "")}
                    ),
                    where=p.get("in", ""),
                )
                for p in op.get("parameters", [])
            ]
            body, body_type = [], ""
            for content_type, content in op.get("requestBody", {}).get("content", {}).items():
                ref = content.get("schema", {}).get("$ref")
                if ref:
                    body, body_type = _fields(_ref_name(ref), schemas), content_type
                    break
            responses, error_codes = [], []
            for code, answer in op.get("responses", {}).items():
                if code.startswith(("4", "5")):
                    error_codes.append((code, answer.get("description", "")))
                    continue
                media: dict = next(iter(answer.get("content", {}).values()), {})
                responses.append((code, _type(media.get("schema", {}), {})))
            endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", op.get("operationId", "")),
                    anchor=op.get("operationId", f"{method}-{path}"),
                    parameters=params,
                    body=body,
                    body_type=body_type,
                    responses=responses,
                    error_codes=error_codes,
                )
            )
    # Create, retrieve, list: the order of the quickstart.
    order = {"POST": 0, "GET": 1}
    endpoints.sort(key=lambda e: (order.get(e.method, 2), "{" not in e.path, e.path))
    objects = [
        ObjectDoc(name=name, description=OBJECT_NOTES.get(name, ""))
        for name in OBJECT_NOTES
        if name in schemas
    ]
    objects = [ObjectDoc(o.name, o.description, _fields(o.name, schemas)) for o in objects]
    info = schema.get("info", {})
    return Reference(
        title=info.get("title", "API"),
        version=info.get("version", ""),
        description=info.get("description", ""),
        endpoints=endpoints,
        objects=objects,
    )


@cache
def api_reference() -> Reference:
    """The /v1 reference; the schema only changes with the code, so it is built once."""
    generator = SchemaGenerator(patterns=None)
    return reference_from_schema(generator.get_schema(request=None, public=True))
