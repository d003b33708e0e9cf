"""drf-spectacular postprocessing hook: every /v1 operation's error answers, in the envelope."""

from __future__ import annotations

from typing import Any

from . import CATALOGUE, described

# The error statuses each kind of operation can answer; their meaning is the catalogue's.
STATUSES = {
    "list": (400, 401, 406, 429),
    "retrieve": (400, 401, 404, 406, 410, 429),  # 400: an unknown query parameter
    "post": (400, 401, 402, 406, 409, 411, 413, 415, 429),
    "action": (400, 401, 404, 406, 409, 410, 411, 413, 415, 429),  # a POST on one job
    "delete": (401, 404, 406, 410, 429),
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": sorted({e.type for e in CATALOGUE})},
                "code": {"type": "string", "enum": [e.code for e in CATALOGUE]},
                "message": {"type": "string"},
                "param": {"type": "string"},
                "request_id": {"type": "string", "nullable": True},
            },
            "required": ["type", "code", "message", "request_id"],
        }
    },
    "required": ["error"],
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
REQUEST_ID = {
    "description": "This request's id, also in error bodies: quote it to support.",
    "required": True,
    "schema": {"type": "string"},
}
RETRY_AFTER = {
    "description": "Seconds to wait before the next request.",
    "required": True,
    "schema": {"type": "integer"},
}


def openapi_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "delete") or not path.startswith("/v1/"):
                continue
            if method == "post":
                kind = "action" if "{" in path else "post"
            else:
                kind = "delete" if method == "delete" else "retrieve" if "{" in path else "list"
            responses = operation.setdefault("responses", {})
            statuses = STATUSES[kind]
            if kind == "post" and "{" in path:  # a POST on one job: it may be gone too
                statuses = tuple(sorted({*statuses, 404, 410}))
            for status in statuses:
                headers = {"Request-Id": REQUEST_ID}
                if status == 429:
                    headers["Retry-After"] = RETRY_AFTER
                responses.setdefault(
                    str(status),
                    {
                        "description": described(status),
                        "headers": headers,
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
            for response in responses.values():
                response.setdefault("headers", {}).setdefault("Request-Id", REQUEST_ID)
    return result
