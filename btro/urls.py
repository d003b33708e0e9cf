from django.urls import include, path

urlpatterns = [
    path("v1/", include("jobs.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "btro.errors.bad_request"
handler403 = "btro.errors.permission_denied"
handler404 = "btro.errors.page_not_found"
handler500 = "btro.errors.server_error"
