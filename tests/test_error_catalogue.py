"""One catalogue of error types feeds the handler, the OpenAPI document, the docs and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.models import User
from btro.errors import CATALOGUE, ApiError, Gone, UploadTooLarge, described
from jobs.models import IdempotencyRecord

README = Path(__file__).resolve().parent.parent / "README.md"


def every_subclass(cls: type) -> list[type]:
    return [sub for child in cls.__subclasses__() for sub in (child, *every_subclass(child))]


def test_the_error_types_import_no_http_machinery():
    code = (
        "import sys, btro.errors; "
        "print([m for m in sys.modules if m.startswith(('rest_framework', 'django.http'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_error_type_is_in_the_catalogue_or_a_kind_of_one_that_is():
    for error in every_subclass(ApiError):
        assert any(issubclass(error, entry) for entry in CATALOGUE), error
    assert all(entry.when for entry in CATALOGUE)


def test_a_file_too_large_is_a_413_about_the_file_with_the_limit_from_settings(settings):
    settings.BTRO_MAX_UPLOAD_BYTES = 5 * 2**20
    error = UploadTooLarge()
    assert (error.status, error.type, error.param) == (413, "invalid_request_error", "file")
    assert error.message == "The file is larger than the 5 MB limit."


def test_the_readme_table_of_error_types_is_the_catalogue():
    pattern = r"^\| `(\w+)` \| `(\w+)` \| (\d+) \| (.+) \|$"
    rows = re.findall(pattern, README.read_text(), re.MULTILINE)
    expected = [(e.type, e.code, str(e.status), e.when) for e in CATALOGUE]
    table = "\n".join(f"| `{t}` | `{c}` | {s} | {w} |" for t, c, s, w in expected)
    assert rows == expected, f"Paste this table into README.md:\n{table}"


@pytest.mark.django_db
def test_the_openapi_document_describes_each_error_answer_from_the_catalogue(client):
    document = client.get("/v1/openapi.json").json()
    error_type = document["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    assert set(error_type["properties"]["type"]["enum"]) == {e.type for e in CATALOGUE}
    assert error_type["properties"]["code"]["enum"] == [e.code for e in CATALOGUE]
    seen = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["description"] == described(int(status))
                    seen.add(int(status))
    assert {400, 401, 402, 404, 409, 410, 413, 429} <= seen


class WritesThenGone(APIView):
    authentication_classes = []
    permission_classes = []

    def post(self, request):
        user = User.objects.get()
        IdempotencyRecord.objects.create(user=user, livemode=False, key="k", fingerprint="f")
        raise Gone("Too late.")


@pytest.mark.django_db
def test_an_error_answer_rolls_back_the_requests_writes_when_requests_are_atomic(user, monkeypatch):
    monkeypatch.setitem(transaction.get_connection().settings_dict, "ATOMIC_REQUESTS", True)
    request = APIRequestFactory().post("/v1/anything")
    with transaction.atomic():  # what ATOMIC_REQUESTS wraps the view in
        assert WritesThenGone.as_view()(request).status_code == 410
    assert not IdempotencyRecord.objects.exists()
