"""Fixtures shared by the whole suite: accounts, keys, an API client, audio to upload."""

from __future__ import annotations

import io
import os
import queue

import dramatiq
import numpy as np
import pytest
import soundfile as sf
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.selectors import api_key_authenticate
from accounts.services import api_key_create, user_signup
from jobs.engines import engine_choices_forget

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # No checkpoints unless a test writes some: a developer's `make models` must not move the
    # auto engine's tiers onto demucs.
    settings.BTRO_MODEL_DIR = str(tmp_path / "models")
    engine_choices_forget()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    cache.clear()  # rate-limit counters start at zero in every test
    yield
    cache.clear()


@pytest.fixture
def user(db):
    """An account as sign-up leaves it: free credits and one test key."""
    return user_signup(email="dev@example.com", password="a long passphrase 42")[0]


@pytest.fixture
def other_user(db):
    return user_signup(email="other@example.com", password="another passphrase 42")[0]


@pytest.fixture
def test_key(user):
    return api_key_create(user=user, mode="test", name="t")[1]


@pytest.fixture
def live_key(user):
    return api_key_create(user=user, mode="live", name="l")[1]


def client_for(secret: str | None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api(test_key):
    return client_for(test_key)


@pytest.fixture
def live_api(live_key):
    return client_for(live_key)


def key_of(secret: str | None) -> ApiKey:
    """The key `secret` authenticates; the test fails where it authenticates none."""
    assert secret is not None
    key = api_key_authenticate(secret=secret)
    assert key is not None, "the secret authenticates no key"
    return key


def wav_bytes(seconds: float = 1.0, sample_rate: int = 44100, channels: int = 2) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t)
    audio = np.stack([tone * (1 + 0.1 * c) for c in range(channels)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), sample_rate, format="WAV")
    return buf.getvalue()


def upload(name: str = "track.wav", data: bytes | None = None) -> io.BytesIO:
    f = io.BytesIO(wav_bytes() if data is None else data)
    f.name = name
    return f


MULTIPART_BOUNDARY = "btro-test-boundary"


def multipart_body(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body built by hand, hostile parts included: (field name, file name or None,
    data) per part, with MULTIPART_BOUNDARY."""
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        )
        chunks.append(data + b"\r\n")
    return b"".join(chunks) + f"--{MULTIPART_BOUNDARY}--\r\n".encode()


@pytest.fixture
def worker(settings):
    """An in-process Dramatiq worker on the StubBroker; yields the broker."""
    settings.BTRO_JOB_MAX_ATTEMPTS = 2
    broker = dramatiq.get_broker()
    broker.flush_all()
    # Fresh queues: a delayed retry that an earlier test's stopped worker held is never
    # marked done, and would make every later join() on its queue wait forever.
    for name in list(broker.queues):
        broker.queues[name] = queue.Queue()
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()


def run_all(broker) -> None:
    """Wait until the in-process worker has run every job message, retries included."""
    from jobs.engines import SEPARATION_QUEUES

    for name in SEPARATION_QUEUES:  # a retry stays on its message's queue
        broker.join(name, fail_fast=False, timeout=60_000)


def stored_job(user, *, tier, seconds, days_ago=0, status="succeeded", livemode=True):
    """A finished job written straight to the database, for the usage figures."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job

    return Job.objects.create(
        id=f"job_{tier}_{seconds}_{days_ago}_{status}_{livemode}",
        user=user,
        livemode=livemode,
        tier=tier,
        status=status,
        filename="t.wav",
        duration=seconds,
        created=timezone.now() - timedelta(days=days_ago),
        download_token="t",
    )


@pytest.fixture
def flaky_results_storage(monkeypatch):
    """Local storage whose first save of a stem fails, as a storage blip would."""
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage.save
    failures: list[str] = []

    def flaky_save(self, name, content, **kwargs):
        if name.startswith("results/") and not failures:
            failures.append(name)
            raise OSError("storage briefly unavailable")
        return real_save(self, name, content, **kwargs)

    monkeypatch.setattr(FileSystemStorage, "save", flaky_save)
    return failures


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS server (S3 API) for the session, started on first use."""
    from tests.services import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


class S3Bucket:
    """A fresh bucket on the session's SeaweedFS that default_storage writes to."""

    def __init__(self, server, name: str) -> None:
        self.server, self.name = server, name
        self.client = server.client()
        self.client.create_bucket(Bucket=name)

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def point(self, settings, endpoint: str | None = None) -> None:
        """Make default_storage this bucket, reached at `endpoint` (the server's by default),
        configured as settings.py configures a named bucket."""
        from boto3.s3.transfer import TransferConfig

        for name, value in self.server.env(self.name).items():
            setattr(settings, name, value)
        settings.AWS_S3_ENDPOINT_URL = endpoint or self.server.endpoint
        part = settings.BTRO_S3_MULTIPART_BYTES
        settings.AWS_S3_TRANSFER_CONFIG = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part
        )
        # Last: a change of STORAGES is what makes Django build default_storage anew.
        s3 = {"BACKEND": "storages.backends.s3.S3Storage"}
        settings.STORAGES = {**settings.STORAGES, "default": s3}


@pytest.fixture
def s3_storage(settings, s3_server, request):
    """default_storage on a bucket of this test's own, on the session's SeaweedFS."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[-40:].strip("-")
    bucket = S3Bucket(s3_server, f"t-{name}-{os.getpid()}")
    bucket.point(settings)
    return bucket
