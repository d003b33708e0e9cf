"""Two accounts × two modes: every principal tries every other's jobs, lists, cursors and
downloads, and gets exactly what a job that never existed gets."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services import api_key_create
from jobs.models import Job
from jobs.services import job_run
from tests.conftest import client_for, upload

pytestmark = pytest.mark.django_db


def never_existed(job_id: str) -> str:
    """An id of the same shape and length as `job_id` that no job has."""
    fake = job_id[:-4] + "zzzz"
    assert not Job.objects.filter(pk=fake).exists()
    return fake


def shape(response, *ids: str) -> tuple[int, str, list[str]]:
    """Status, body and header names with request ids and the given ids blanked."""
    body = response.content.decode()
    data = json.loads(body)
    data["error"]["request_id"] = "req"
    body = json.dumps(data)
    for job_id in ids:
        body = body.replace(job_id, "ID")
    headers = sorted(name for name in response.headers if name != "Request-Id")
    return response.status_code, body, headers


@pytest.fixture
def principals(user, other_user, settings):
    """(name, client, job as the API shows it once finished) for each account and mode."""
    settings.BTRO_ENGINE = "tests.fake_engines:SplitEngine"
    out = []
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for owner, mode in itertools.product((user, other_user), ("test", "live")):
            name = f"{owner.email.split('@')[0]}-{mode}"
            api = client_for(api_key_create(user=owner, mode=mode)[1])
            files = {"file": upload(f"{name}-secret.wav"), "tier": "basic"}
            created = api.post("/v1/jobs", files, format="multipart")
            assert created.status_code == 201, created.content
            if mode == "live":
                job_run(job_id=created.json()["id"])
            out.append((name, api, created.json()["id"]))
        clock.shift(timedelta(seconds=3))
        finished = []
        for name, api, job_id in out:
            job = api.get(f"/v1/jobs/{job_id}").json()
            assert job["status"] == "succeeded", job
            finished.append((name, api, job))
        yield finished


def test_no_principal_sees_anything_of_anothers_jobs(principals):
    for (name, api, own), (victim, _, job) in itertools.permutations(principals, 2):
        secret_bits = [job["id"], job["filename"], Job.objects.get(pk=job["id"]).download_token]
        fake = never_existed(job["id"])
        context = f"{name} against {victim}"

        theirs = api.get(f"/v1/jobs/{job['id']}")
        assert theirs.status_code == 404, context
        assert shape(theirs, job["id"]) == shape(api.get(f"/v1/jobs/{fake}"), fake), context

        listed = api.get("/v1/jobs", {"limit": 100})
        assert listed.status_code == 200
        assert [j["id"] for j in listed.json()["data"]] == [own["id"]], context
        assert not [bit for bit in secret_bits if bit in listed.content.decode()], context

        for cursor in ("starting_after", "ending_before"):
            theirs = api.get("/v1/jobs", {cursor: job["id"]})
            missing = api.get("/v1/jobs", {cursor: fake})
            assert theirs.status_code == 400, context
            assert shape(theirs, job["id"]) == shape(missing, fake), context
            assert not [bit for bit in secret_bits[1:] if bit in theirs.content.decode()]


def test_a_download_needs_the_jobs_own_token_whoever_asks(principals):
    """Stem URLs are capabilities: another job's token, or a guessed one, is a plain 404."""
    for (name, api, own), (victim, _, job) in itertools.permutations(principals, 2):
        own_url = own["result"]["stems"]["vocals"]["url"]
        their_url = job["result"]["stems"]["vocals"]["url"]
        fake = never_existed(job["id"])
        token, own_token = their_url.split("/")[-2], own_url.split("/")[-2]
        guessed = their_url.replace(token, token[:-1] + ("b" if token[-1] == "a" else "a"))
        with_own_token = their_url.replace(token, own_token)
        missing = api.get(with_own_token.replace(job["id"], fake))
        assert missing.status_code == 404
        for url in (with_own_token, guessed, their_url.replace(job["id"], own["id"])):
            response = api.get(url)
            assert response.status_code == 404, (name, victim, url)
            assert shape(response, job["id"], own["id"]) == shape(missing, fake, own["id"])
            assert job["filename"].split(".")[0] not in response.content.decode()
        assert api.get(own_url).status_code == 200  # the principal's own URL does work


def test_another_principals_expired_job_is_404_not_410(principals):
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        for (name, api, own), (victim, _, job) in itertools.permutations(principals, 2):
            assert api.get(f"/v1/jobs/{own['id']}").status_code == 410
            theirs = api.get(f"/v1/jobs/{job['id']}")
            fake = never_existed(job["id"])
            missing = api.get(f"/v1/jobs/{fake}")
            assert shape(theirs, job["id"]) == shape(missing, fake), (name, victim)
