from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from . import views
from .apis import JobViewSet

app_name = "jobs"
job_list = JobViewSet.as_view({"get": "list", "post": "create"})
job_detail = JobViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("files/<str:job_id>/<str:token>/<str:filename>", views.download, name="download"),
    re_path(r"^jobs/?$", job_list, name="job-list"),
    re_path(r"^jobs/(?P<pk>[^/]+)/?$", job_detail, name="job-detail"),
]
