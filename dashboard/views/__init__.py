"""HTML pages: each view parses its input, calls services or selectors, and renders."""

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """What a @login_required view receives: a request whose user has signed in."""

    user: User
