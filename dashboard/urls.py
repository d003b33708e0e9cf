from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path
from django.views.decorators.cache import never_cache

from btro import converters  # noqa: F401 (registers <id:…>)

from .views import auth, jobs, keys, pages, webhooks


def page(route: str, view, name: str) -> URLPattern:
    """A dashboard route. Its pages hold secrets, CSRF tokens and account data: never cached."""
    return path(route, never_cache(view), name=name)


app_name = "dashboard"
urlpatterns = [
    page("", pages.home, name="home"),
    page("signup/", auth.signup, name="signup"),
    page("login/", auth.LoginView.as_view(), name="login"),
    page("logout/", auth.LogoutView.as_view(), name="logout"),
    page("password-reset/", auth.PasswordResetView.as_view(), name="password_reset"),
    page(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    page(
        "reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    page(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    page("keys/", keys.keys, name="keys"),
    page("keys/create/", keys.key_create, name="key_create"),
    page("keys/<int:key_id>/roll/", keys.key_roll, name="key_roll"),
    page("keys/<int:key_id>/revoke/", keys.key_revoke, name="key_revoke"),
    page("jobs/", jobs.job_list, name="jobs"),
    page("jobs/<id:job_id>/", jobs.job_detail, name="job"),
    page("jobs/<id:job_id>/poll/", jobs.job_poll, name="job_poll"),
    page("jobs/<id:job_id>/cancel/", jobs.job_cancel_confirm, name="job_cancel"),
    page("jobs/<id:job_id>/delete/", jobs.job_delete_confirm, name="job_delete"),
    page("try/", jobs.try_it, name="try"),
    page("usage/", pages.usage, name="usage"),
    page("webhooks/", webhooks.webhooks, name="webhooks"),
    page("webhooks/create/", webhooks.endpoint_create, name="webhook_create"),
    page("webhooks/<id:endpoint_id>/toggle/", webhooks.endpoint_toggle, name="webhook_toggle"),
    page("webhooks/<id:endpoint_id>/roll/", webhooks.endpoint_roll, name="webhook_roll"),
    page("webhooks/<id:endpoint_id>/test/", webhooks.endpoint_test, name="webhook_test"),
    page("webhooks/<id:endpoint_id>/delete/", webhooks.endpoint_delete, name="webhook_delete"),
    page(
        "webhooks/deliveries/<int:delivery_id>/resend/",
        webhooks.delivery_resend,
        name="delivery_resend",
    ),
    page("docs/", pages.reference, name="reference"),
]
