"""What a delivery refuses to do: call a private address, reach a disabled endpoint, or keep
calling an endpoint that has failed every delivery for 3 days."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.conftest import upload
from tests.webhooks.receiver import verify
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import delivery_attempt

pytestmark = pytest.mark.django_db(transaction=True)


def endpoint(client, url, events=("*",)) -> dict:
    response = client.post("/v1/webhook_endpoints", {"url": url, "enabled_events": list(events)})
    assert response.status_code == 201, response.content
    return response.json()


def create_test_job(client) -> dict:
    response = client.post("/v1/jobs", {"file": upload(), "tier": "basic"}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def now_jobs(settings):
    settings.BTRO_TEST_JOB_DELAY_SECONDS = 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",  # a name that resolves to loopback
        "[::1]:{port}",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",  # the cloud metadata service
        "[fe80::1]",
        "0.0.0.0:{port}",
    ],
)
def test_a_private_or_loopback_target_is_refused_at_delivery(
    api, receiver, settings, now_jobs, host
):
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://{host.format(port=port)}/hooks/"
    endpoint(api, url)
    settings.BTRO_WEBHOOK_ALLOW_PRIVATE = False
    create_test_job(api)
    started = time.monotonic()
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    assert time.monotonic() - started < 2  # refused before any connection, not timed out
    delivery = Delivery.objects.get()
    assert delivery.response_status is None and delivery.state == Delivery.State.PENDING
    assert "private or reserved" in delivery.error, delivery.error
    assert receiver.received == []


def test_the_same_loopback_receiver_is_reached_when_private_targets_are_allowed(
    api, receiver, now_jobs
):
    secret = endpoint(api, receiver.url.replace("127.0.0.1", "localhost"))["secret"]
    create_test_job(api)
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    verify(receiver.wait_for(1)[0], secret)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "http://",
        "example.com/hook",
        "http://user:pw@example.com/",
        "javascript:alert(1)",
        "",
    ],
)
def test_an_endpoint_url_that_is_not_http_is_refused_at_creation(api, url):
    response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["type"] == "invalid_parameter"
    assert response.json()["error"]["param"] == "url"
    response = api.post("/v1/jobs", {"file": upload(), "tier": "basic", "webhook": url or "x"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "webhook"


def test_a_disabled_endpoint_gets_nothing(api, worker, receiver, now_jobs):
    created = endpoint(api, receiver.url)
    response = api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": "true"})
    assert response.status_code == 200 and response.json()["status"] == "disabled"
    create_test_job(api)
    time.sleep(0.5)
    worker.join("webhooks", timeout=60_000)
    assert receiver.received == [] and not Delivery.objects.exists()
    api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": "false"})
    create_test_job(api)
    receiver.wait_for(1)


def test_an_endpoint_disabled_after_the_event_was_written_gets_nothing(api, receiver, now_jobs):
    created = endpoint(api, receiver.url)
    create_test_job(api)
    api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": "true"})
    delivery_attempt(delivery_id=Delivery.objects.get().pk)
    assert receiver.received == []
    assert Delivery.objects.get().state == Delivery.State.FAILED


def test_an_endpoint_failing_every_delivery_for_3_days_is_disabled(api, receiver, now_jobs):
    receiver.statuses = [500]
    created = endpoint(api, receiver.url)
    create_test_job(api)
    delivery = Delivery.objects.get()
    start, waits = timezone.now(), []
    with time_machine.travel(start, tick=False) as clock:
        while delivery.state == Delivery.State.PENDING:
            delivery_attempt(delivery_id=delivery.pk)
            delivery.refresh_from_db()
            if delivery.next_attempt_at:
                waits.append((delivery.next_attempt_at - timezone.now()).total_seconds())
                clock.move_to(delivery.next_attempt_at)
        elapsed = timezone.now() - start
    # 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, then every 12 h
    assert waits == [60, 300, 1800, 7200, 18000, 36000, 43200, 43200, 43200, 43200, 43200]
    assert delivery.state == Delivery.State.FAILED
    assert timedelta(days=3) <= elapsed < timedelta(days=3.5)
    assert delivery.attempts == len(receiver.received) == 12
    stored = WebhookEndpoint.objects.get(pk=created["id"])
    assert stored.disabled and "3 days" in stored.disabled_reason
    shown = api.get(f"/v1/webhook_endpoints/{created['id']}").json()
    assert shown["status"] == "disabled" and "3 days" in shown["disabled_reason"]
    count = len(receiver.received)
    create_test_job(api)
    assert Delivery.objects.count() == 1  # no delivery for the next event
    assert len(receiver.received) == count


def test_one_success_restarts_the_3_days(api, receiver, now_jobs):
    receiver.statuses = [500, 500, 200, 500]
    created = endpoint(api, receiver.url)
    create_test_job(api)
    create_test_job(api)
    first, second = Delivery.objects.order_by("id")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        delivery_attempt(delivery_id=first.pk)  # 500
        clock.move_to(start + timedelta(days=2))
        Delivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now())
        delivery_attempt(delivery_id=second.pk)  # 500
        first.refresh_from_db()
        assert first.next_attempt_at is not None
        clock.move_to(first.next_attempt_at + timedelta(days=2))
        Delivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
        delivery_attempt(delivery_id=first.pk)  # 200: the endpoint works
        clock.move_to(start + timedelta(days=4))
        Delivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now())
        delivery_attempt(delivery_id=second.pk)  # 500, but only just failing again
    assert not WebhookEndpoint.objects.get(pk=created["id"]).disabled
