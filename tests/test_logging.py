"""Settings read from the environment: where mail (and logs) go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
