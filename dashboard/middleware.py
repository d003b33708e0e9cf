"""The Content-Security-Policy, kept by django-csp: the settings' policy for the pages, and a
policy that loads nothing for JSON answers (the /v1 API), which no browser should render."""

from __future__ import annotations

from csp.constants import NONE
from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponseBase

JSON_POLICY = {"default-src": [NONE], "frame-ancestors": [NONE]}


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        media_type = response.get("Content-Type", "").split(";")[0].strip()
        if not report_only and media_type.endswith(("/json", "+json")):
            parts.config = JSON_POLICY
        return parts
