"""The product's URLs plus `GET /bench/bare/<id>`: a DRF view with one query and nothing else
(no authentication, permission or throttle), the floor bench.scale measures /v1/jobs/:id
against. Loaded only through bench.settings."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from btro.urls import *  # noqa: F403
from btro.urls import urlpatterns as product_urlpatterns
from jobs.models import Job


class BareJobView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    def get(self, request: Request, pk: str) -> Response:
        job = Job.objects.filter(pk=pk).values("id", "status", "progress", "created").first()
        return Response(job)


urlpatterns = [path("bench/bare/<str:pk>", BareJobView.as_view()), *product_urlpatterns]
