"""Bearer API-key authentication for /v1: anything wrong with the key is a 401."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiKey, User
from .selectors import api_key_authenticate
from .services import api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiKey]:
        header = authentication.get_authorization_header(request).split()
        if not header:
            raise exceptions.NotAuthenticated(
                "No API key provided. Send it as 'Authorization: Bearer sk_test_…'."
            )
        if header[0].lower() != b"bearer" or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header. Use 'Authorization: Bearer YOUR_SECRET_KEY'."
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as err:
            raise exceptions.AuthenticationFailed("Invalid API key.") from err
        key = api_key_authenticate(secret=secret)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "Invalid API key: it is malformed, unknown, revoked or expired."
            )
        api_key_touch(key=key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
