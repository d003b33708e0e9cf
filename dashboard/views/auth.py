"""Sign up, log in, log out and password reset, on Django's auth views where they fit."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_ratelimit.decorators import ratelimit

from accounts.models import ApiKey, User
from accounts.services import user_signup

from ..forms import LoginForm, SignupForm
from ..reveal import reveal_later
from ..throttle import THROTTLED_MESSAGE, LoginAttempt, posted_email, rate_for

SIGNUP_FAILED = (
    "We could not create an account with these details. "
    "If you already have one, log in or reset your password."
)


def _signup(email: str, password: str) -> tuple[User, ApiKey, str] | None:
    """A new account and the secret of its first test key, or None if the email is taken."""
    try:
        return user_signup(email=email, password=password)
    except IntegrityError:
        return None


@sensitive_post_parameters("password")
@csrf_protect
@ratelimit(key="ip", rate=rate_for("BTRO_RATE_SIGNUP_IP"), method="POST", block=False)
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    form = SignupForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if getattr(request, "limited", False):
            form.add_error(None, THROTTLED_MESSAGE)
            status = 429
        elif form.is_valid():
            created = _signup(form.cleaned_data["email"], form.cleaned_data["password"])
            if created is None:
                form.add_error(None, SIGNUP_FAILED)
            else:
                user, key, secret = created
                login(request, user)
                reveal_later(request, key=key, secret=secret)
                messages.success(request, "Welcome! Your test key is below; copy it now.")
                return redirect("dashboard:home")
    context = {"form": form, "free_credits": settings.BTRO_FREE_CREDITS}
    return render(request, "registration/signup.html", context, status=status)


class LoginView(auth_views.LoginView):
    """Attempts are counted per email and address, per address and per email before the
    password is checked; the right password takes its attempt back. Past a limit, a 429."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.attempt = LoginAttempt(request)
        if self.attempt.blocked:
            # An unbound form: checking the password of a blocked attempt would defeat the limit.
            form = self.form_class(request, initial={"username": request.POST.get("username")})
            context = self.get_context_data(form=form, form_error=THROTTLED_MESSAGE)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        self.attempt.refund()
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    pass


@method_decorator(
    ratelimit(key="ip", rate=rate_for("BTRO_RATE_RESET_IP"), method="POST", block=False),
    name="post",
)
@method_decorator(
    ratelimit(key=posted_email, rate=rate_for("BTRO_RATE_RESET_EMAIL"), method="POST", block=False),
    name="post",
)
class PasswordResetView(auth_views.PasswordResetView):
    """Always answers 'check your email', whether or not the address has an account."""

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("dashboard:password_reset_done")

    def form_valid(self, form) -> HttpResponse:
        if getattr(self.request, "limited", False):
            form.add_error(None, THROTTLED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("dashboard:password_reset_complete")
