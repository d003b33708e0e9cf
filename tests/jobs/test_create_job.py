import pytest

from jobs.models import Job
from tests.conftest import upload, wav_bytes

pytestmark = pytest.mark.django_db


def post(api, **data):
    return api.post("/v1/jobs", data, format="multipart")


def assert_error(response, status, type, param=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == type
    assert error["request_id"] == response["Request-Id"]
    assert error["message"]
    if param:
        assert error["param"] == param
    return error


def test_a_test_key_creates_a_queued_test_job(api):
    response = post(api, file=upload("song.wav"), tier="pro")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("job_test_")
    assert body | {"id": None, "created": None} == {
        "id": None,
        "object": "job",
        "livemode": False,
        "type": "splitter",
        "status": "queued",
        "tier": "pro",
        "filename": "song.wav",
        "created": None,
        "completed_at": None,
        "expires_at": None,
        "progress": 0,
        "error": None,
        "result": None,
        "metadata": {},
    }
    assert response["Request-Id"].startswith("req_")


def test_a_missing_file_is_invalid_parameter_file(api):
    assert_error(post(api, tier="pro"), 400, "invalid_parameter", "file")


def test_a_missing_tier_names_the_allowed_values(api):
    error = assert_error(post(api, file=upload()), 400, "invalid_parameter", "tier")
    for tier in ("basic", "pro", "studio", "vocal_remover"):
        assert tier in error["message"]


def test_an_unknown_tier_names_the_allowed_values(api):
    error = assert_error(post(api, file=upload(), tier="ultra"), 400, "invalid_parameter", "tier")
    assert "vocal_remover" in error["message"]


def test_a_type_other_than_splitter_is_refused(api):
    assert_error(
        post(api, file=upload(), tier="pro", type="mastering"), 400, "invalid_parameter", "type"
    )


def test_a_text_file_named_mp3_is_refused_by_its_content(api):
    fake = upload("song.mp3", b"this is not audio, just some text\n" * 100)
    assert_error(post(api, file=fake, tier="pro"), 400, "invalid_parameter", "file")
    assert not Job.objects.exists()


def test_an_empty_file_is_refused(api):
    assert_error(post(api, file=upload("empty.wav", b""), tier="pro"), 400, "invalid_parameter")


def test_an_upload_over_the_size_limit_is_413_in_the_envelope(api, settings):
    settings.BTRO_MAX_UPLOAD_BYTES = 50_000
    big = upload("big.wav", b"\0" * 200_000)
    assert_error(post(api, file=big, tier="pro"), 413, "invalid_request_error")


def test_an_upload_without_a_content_length_is_counted_as_it_arrives(api, settings, rf):
    from btro.errors import PayloadTooLarge
    from jobs.uploads import SizeLimitUploadHandler

    settings.BTRO_MAX_UPLOAD_BYTES = 1000
    handler = SizeLimitUploadHandler(rf.post("/v1/jobs"))
    handler.receive_data_chunk(b"x" * 600, 0)
    with pytest.raises(PayloadTooLarge):
        handler.receive_data_chunk(b"x" * 600, 600)


def test_audio_longer_than_the_duration_limit_is_refused(api, settings):
    settings.BTRO_MAX_DURATION_SECONDS = 0.5
    error = assert_error(post(api, file=upload(), tier="pro"), 400, "invalid_parameter", "file")
    assert "limit" in error["message"]


def test_hostile_filenames_are_reduced_to_a_plain_name(api):
    body = post(api, file=upload("../../etc/passwd\x00.wav"), tier="basic").json()
    assert body["filename"] == "passwd.wav"


def test_audio_too_large_once_decoded_is_refused_whatever_its_length(api, settings):
    settings.BTRO_MAX_DECODED_SAMPLES = 44100  # one second of mono
    data = wav_bytes(seconds=1.0, channels=2)
    response = post(api, file=upload("wide.wav", data), tier="pro")
    error = assert_error(response, 400, "invalid_parameter", "file")
    assert "2 channels at 44100 Hz" in error["message"]
