"""Logs an operator can trace: the request or job id on every line, JSON when asked, errors
reported; and the settings that choose where logs and mail go."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.signals import got_request_exception

from tests.conftest import client_for, run_all, upload, wav_bytes

ROOT = Path(__file__).resolve().parent.parent
OURS = ("EMAIL_", "LOG_", "SENTRY_", "DJANGO_SETTINGS_MODULE")


def settings_under(env: dict[str, str], *names: str, pythonpath: str = "") -> dict:
    """Import btro.settings in a fresh interpreter with `env`; return the settings named."""
    code = (
        "import json, sys, btro.settings as s; "
        "json.dump({n: getattr(s, n, None) for n in sys.argv[1:]}, sys.stdout, default=str)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    if pythonpath:
        clean["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", code, *names],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


@pytest.fixture
def logs_in():
    """Apply the LOGGING that settings make for a LOG_FORMAT, into a buffer; undo it after."""
    manager = logging.root.manager
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for name, lg in [("", logging.root), *manager.loggerDict.items()]
        if isinstance(lg, logging.Logger)
    }
    buffer = io.StringIO()

    def apply(log_format: str) -> io.StringIO:
        config = settings_under({"LOG_FORMAT": log_format}, "LOGGING")["LOGGING"]
        config["handlers"]["console"]["stream"] = buffer
        logging.config.dictConfig(config)
        return buffer

    yield apply
    for name, (handlers, level, propagate, disabled) in saved.items():
        lg = logging.getLogger(name or None)
        lg.handlers[:], lg.level, lg.propagate, lg.disabled = handlers, level, propagate, disabled


def lines_with(buffer: io.StringIO, needle: str) -> list[str]:
    return [line for line in buffer.getvalue().splitlines() if needle in line]


@pytest.fixture
def failing_list(monkeypatch):
    from jobs import selectors

    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "job_list", boom)


def get_500(test_key: str) -> dict:
    client = client_for(test_key)
    client.raise_request_exception = False  # answer the 500 as a real client would see it
    response = client.get("/v1/jobs")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["request_id"] == response["Request-Id"]
    return error


@pytest.mark.django_db
def test_a_500s_request_id_finds_its_text_log_lines_with_one_grep(test_key, failing_list, logs_in):
    output = logs_in("text")
    request_id = get_500(test_key)["request_id"]
    found = lines_with(output, request_id)
    assert any(f" ERROR btro.errors [{request_id}|-] Unhandled error" in line for line in found)
    assert any(f" ERROR django.request [{request_id}|-] " in line for line in found)
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR "
    assert all(re.match(stamp, line) for line in found), found
    assert "RuntimeError: database on fire" in output.getvalue()  # the traceback follows


@pytest.mark.django_db
def test_a_500s_request_id_finds_its_json_log_lines_which_parse(test_key, failing_list, logs_in):
    output = logs_in("json")
    request_id = get_500(test_key)["request_id"]
    records = [json.loads(line) for line in output.getvalue().splitlines()]  # every line parses
    mine = [r for r in records if r["request_id"] == request_id]
    assert {r["logger"] for r in mine} >= {"btro.errors", "django.request"}
    for record in mine:
        assert record["level"] == "ERROR" and record["job_id"] is None
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$", record["time"])
        assert "request" not in record  # Django's request object is not dumped as an extra
    handled = next(r for r in mine if r["logger"] == "btro.errors")
    assert "RuntimeError: database on fire" in handled["exc_info"]
    assert len(lines_with(output, request_id)) == len(mine)  # the grep finds those, no more


@pytest.mark.django_db
def test_an_unhandled_api_error_reaches_got_request_exception(test_key, failing_list):
    heard = []

    def receiver(sender, request, **kwargs):
        heard.append((request.request_id, request.path, sys.exc_info()[1]))

    got_request_exception.connect(receiver)
    try:
        request_id = get_500(test_key)["request_id"]
    finally:
        got_request_exception.disconnect(receiver)
    assert len(heard) == 1
    assert heard[0][:2] == (request_id, "/v1/jobs")
    assert str(heard[0][2]) == "database on fire"  # a tracker reads sys.exc_info() there


@pytest.mark.django_db
def test_an_expected_api_error_does_not_reach_got_request_exception(api):
    heard = []
    got_request_exception.connect(receiver := lambda **kwargs: heard.append(kwargs))
    try:
        assert api.get("/v1/jobs/job_nope").status_code == 404
        assert api.post("/v1/jobs", {"tier": "nope"}).status_code == 400
    finally:
        got_request_exception.disconnect(receiver)
    assert heard == []


@pytest.fixture
def chatty_worker(settings, worker):
    settings.BTRO_ENGINE = "tests.fake_engines:ChattyEngine"
    return worker


@pytest.mark.django_db(transaction=True)
def test_a_jobs_worker_log_lines_carry_its_job_id_even_from_the_separation_child(
    live_key, chatty_worker, logs_in
):
    output = logs_in("json")
    live_api = client_for(live_key)
    jobs = {}
    for tier in ("pro", "studio"):  # the fake engine fails on studio with a bug of its own
        data = {"file": upload(data=wav_bytes(1.0)), "tier": tier}
        jobs[tier] = live_api.post("/v1/jobs", data, format="multipart").json()["id"]
    run_all(chatty_worker)
    assert live_api.get(f"/v1/jobs/{jobs['pro']}").json()["status"] == "succeeded"
    records = [json.loads(line) for line in output.getvalue().splitlines()]
    for job_id in jobs.values():
        mine = [r for r in records if r["job_id"] == job_id]
        assert any(
            r["logger"] == "tests.fake_engines" and r["message"] == "separating 44100 frames"
            for r in mine
        ), records
        assert all(r["request_id"] is None for r in mine)
    crash = next(r for r in records if r["job_id"] == jobs["studio"] and r["level"] == "ERROR")
    assert crash["logger"] == "jobs.separation.runner"
    assert "ZeroDivisionError: a bug in the engine" in crash["message"]


def test_a_chatty_engine_does_not_postpone_the_workers_heartbeat(tmp_path, monkeypatch):
    import soundfile as sf

    from jobs.separation import runner

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.5)
    (tmp_path / "in.wav").write_bytes(wav_bytes(0.5))
    task = runner.Task(
        input_path=str(tmp_path / "in.wav"),
        tier="basic",
        engine="tests.fake_engines:ChattyEngine",
        engine_options={"lines": 30, "every": 0.1},  # a line every 0.1 s, no progress for 3 s
        out_dir=str(tmp_path),
    )
    beats: list[None] = []

    def on_progress(progress: float | None) -> None:
        if progress is None:  # a heartbeat
            beats.append(progress)

    process = runner.SeparationProcess()
    try:
        outcome = process.run(task, timeout=60, on_progress=on_progress)
    finally:
        process.stop()
    assert sf.info(outcome.stems["vocals"]["path"]).frames == 22050
    assert len(beats) >= 3  # about one per 0.5 s of the 3 s; none if each line postponed it


def test_log_format_is_text_or_json():
    with pytest.raises(RuntimeError, match="LOG_FORMAT is text or json, not 'xml'"):
        settings_under({"LOG_FORMAT": "xml"}, "LOGGING")


LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_mail_goes_to_the_console_when_nothing_is_set():
    assert settings_under({}, "EMAIL_BACKEND")["EMAIL_BACKEND"] == (
        "django.core.mail.backends.console.EmailBackend"
    )


def test_email_backend_takes_effect():
    assert settings_under({"EMAIL_BACKEND": LOCMEM}, "EMAIL_BACKEND")["EMAIL_BACKEND"] == LOCMEM


def test_email_url_takes_effect_and_wins_over_email_backend():
    url = "smtp+tls://mailer:s3cret@mail.example.com:2525"
    got = settings_under(
        {"EMAIL_URL": url, "EMAIL_BACKEND": LOCMEM},
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_USE_TLS",
    )
    assert got == {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 2525,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_USE_TLS": True,
    }


@pytest.fixture
def fake_sentry(tmp_path):
    """A stand-in sentry_sdk package that writes down how it was imported and initialised."""
    package = tmp_path / "sentry_sdk"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import json, pathlib\n"
        "seen = pathlib.Path(__file__).with_name('seen')\n"
        "seen.write_text('imported')\n"
        "def init(**kwargs):\n"
        "    seen.write_text(json.dumps(kwargs))\n"
    )
    return package


def test_sentry_is_initialised_when_sentry_dsn_is_set(fake_sentry):
    dsn = "https://key@sentry.example.com/42"
    settings_under({"SENTRY_DSN": dsn}, "SENTRY_DSN", pythonpath=str(fake_sentry.parent))
    assert json.loads((fake_sentry / "seen").read_text()) == {"dsn": dsn}


def test_sentry_is_not_even_imported_without_sentry_dsn(fake_sentry):
    settings_under({}, "SENTRY_DSN", pythonpath=str(fake_sentry.parent))
    assert not (fake_sentry / "seen").exists()


def test_sentry_dsn_without_the_package_says_what_to_install(fake_sentry):
    (fake_sentry / "__init__.py").write_text("raise ImportError('No module named sentry_sdk')\n")
    with pytest.raises(RuntimeError) as raised:
        settings_under(
            {"SENTRY_DSN": "https://k@s.example.com/1"}, pythonpath=str(fake_sentry.parent)
        )
    assert "ImproperlyConfigured: SENTRY_DSN is set but sentry-sdk is not installed" in str(
        raised.value
    )
    assert "requirements-sentry.txt" in str(raised.value)
