"""The OpenAPI document as a third-party developer uses it: it validates, and
openapi-python-client makes a working client from it, with no warning, that runs the seed's
flow against a live server."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.conftest import wav_bytes

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def document(client) -> dict:
    return client.get("/v1/openapi.json").json()


def test_the_document_is_valid_openapi(document):
    validate(document)


@pytest.fixture
def generated(document, tmp_path, monkeypatch):
    """A client package generated from the document, importable as `btro_generated`."""
    import json

    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(document))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(source)]
        + ["--meta", "none", "--output-path", str(tmp_path / "btro_generated")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "warning" not in output.lower(), output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("btro_generated")
    for name in [m for m in sys.modules if m.startswith("btro_generated")]:
        del sys.modules[name]


@pytest.mark.django_db(transaction=True)
def test_the_generated_client_runs_the_seeds_flow(generated, live_server, test_key):
    from btro_generated import AuthenticatedClient
    from btro_generated.api.files import files_download
    from btro_generated.api.jobs import jobs_create, jobs_list, jobs_retrieve
    from btro_generated.models import ErrorResponse, Job, JobCreate, TierEnum
    from btro_generated.types import File

    client = AuthenticatedClient(base_url=live_server.url, token=test_key)
    body = JobCreate(
        file=File(payload=io.BytesIO(wav_bytes()), file_name="song.wav"), tier=TierEnum.PRO
    )
    created = jobs_create.sync(client=client, body=body, idempotency_key="generated-1")
    assert isinstance(created, Job), created
    assert created.status == "queued" and created.object_ == "job"

    deadline = time.monotonic() + 15
    job = created
    while job.status == "queued" and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = jobs_retrieve.sync(created.id, client=client)
        assert isinstance(answer, Job), answer
        job = answer
    assert job.status == "succeeded"
    stems = job.result.stems.additional_properties
    assert set(stems) == {"vocals", "drums", "bass", "other"}

    url = stems["vocals"].url
    job_id, token, filename = url.rsplit("/", 3)[1:]
    stem = files_download.sync_detailed(job_id, token, filename, client=client)
    assert stem.status_code == 200
    assert stem.content[:4] == b"RIFF" and len(stem.content) == stems["vocals"].bytes_

    listed = jobs_list.sync(client=client, limit=1)
    assert listed.data[0].id == created.id and listed.object_ == "list"

    missing = jobs_retrieve.sync("job_test_missing", client=client)
    assert isinstance(missing, ErrorResponse)
    assert missing.error.type_ == "invalid_request_error"
