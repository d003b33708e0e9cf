from django.contrib.auth import views as auth_views
from django.urls import path

from btro import converters  # noqa: F401 (registers <id:…>)

from .views import auth, jobs, keys, pages

app_name = "dashboard"
urlpatterns = [
    path("", pages.home, name="home"),
    path("signup/", auth.signup, name="signup"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("keys/", keys.keys, name="keys"),
    path("keys/create/", keys.key_create, name="key_create"),
    path("keys/<int:key_id>/roll/", keys.key_roll, name="key_roll"),
    path("keys/<int:key_id>/revoke/", keys.key_revoke, name="key_revoke"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<id:job_id>/", jobs.job_detail, name="job"),
    path("jobs/<id:job_id>/poll/", jobs.job_poll, name="job_poll"),
    path("try/", jobs.try_it, name="try"),
    path("usage/", pages.usage, name="usage"),
    path("docs/", pages.reference, name="reference"),
]
