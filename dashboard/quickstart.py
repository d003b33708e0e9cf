"""The seed's curl quickstart, filled in with this server's URL and a key."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site_url(request: HttpRequest) -> str:
    """This server's base URL: SITE_URL when set, else the host the browser used."""
    return (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")


def curl_create(
    request: HttpRequest,
    *,
    key: str = "$BTRO_API_KEY",
    path: str = "/path/to/track.mp3",
    tier: str = "pro",
) -> str:
    return (
        f'curl --request POST "{site_url(request)}/v1/jobs" \\\n'
        f'     --header "Authorization: Bearer {key}" \\\n'
        f'     -F "file=@{path}" \\\n'
        f'     -F "tier={tier}"'
    )


def curl_retrieve(request: HttpRequest, *, key: str = "$BTRO_API_KEY", job_id: str) -> str:
    return (
        f'curl "{site_url(request)}/v1/jobs/{job_id}" \\\n'
        f'     --header "Authorization: Bearer {key}"'
    )
