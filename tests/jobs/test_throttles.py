import json

import pytest
import time_machine
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from jobs.throttles import CreateThrottle, ThrottledByAction

pytestmark = pytest.mark.django_db


class Pings(ThrottledByAction, viewsets.ViewSet):
    throttles_by_action = {"list": [CreateThrottle]}

    def ping(self, request):
        return Response({"pong": True})


def test_an_action_without_a_throttle_entry_gets_the_read_throttle(test_key, settings):
    settings.BTRO_RATE_READ = "2/m"
    ping = Pings.as_view({"get": "ping"})
    with time_machine.travel(timezone.now(), tick=False):
        answers = [
            ping(APIRequestFactory().get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {test_key}"))
            for _ in range(3)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert json.loads(answers[2].content)["error"]["type"] == "rate_limit_exceeded"
    assert int(answers[2]["Retry-After"]) >= 1
