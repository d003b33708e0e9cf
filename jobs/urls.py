from django.urls import path

from btro import converters  # noqa: F401 (registers <id:…>)

from . import views
from .apis import AccountViewSet, JobViewSet, OpenApiView

app_name = "jobs"
job_list = JobViewSet.as_view({"get": "list", "post": "create"})
job_detail = JobViewSet.as_view({"get": "retrieve", "post": "update", "delete": "destroy"})
job_cancel = JobViewSet.as_view({"post": "cancel"})
balance = AccountViewSet.as_view({"get": "balance"})
usage = AccountViewSet.as_view({"get": "usage"})

urlpatterns = [
    path("openapi.json", OpenApiView.as_view(), name="openapi"),
    path("files/<id:job_id>/<id:token>/<id:filename>", views.download, name="download"),
    path("jobs", job_list, name="job-list"),
    path("jobs/<id:pk>", job_detail, name="job-detail"),
    path("jobs/<id:pk>/cancel", job_cancel, name="job-cancel"),
    path("balance", balance, name="balance"),
    path("usage", usage, name="usage"),
    # A trailing slash works too, but the documented paths have none.
    path("jobs/", job_list),
    path("jobs/<id:pk>/", job_detail),
    path("jobs/<id:pk>/cancel/", job_cancel),
]


def drop_slashed_twins(endpoints: list, **kwargs) -> list:
    """drf-spectacular hook: document each path once, as `/v1/jobs`, not `/v1/jobs/`."""
    paths = {endpoint[0] for endpoint in endpoints}
    return [e for e in endpoints if not (e[0].endswith("/") and e[0].rstrip("/") in paths)]
