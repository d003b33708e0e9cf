from django.urls import include, path

from jobs.views import metrics

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("v1/", include("jobs.urls")),
    path("v1/", include("webhooks.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "btro.errors.handlers.bad_request"
handler403 = "btro.errors.handlers.permission_denied"
handler404 = "btro.errors.handlers.page_not_found"
handler500 = "btro.errors.handlers.server_error"
