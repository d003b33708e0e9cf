"""`manage.py check --deploy` is clean with production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_reports_no_issue_with_production_settings(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BTRO_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(64),
        DEBUG="false",
        BTRO_SECURE="true",
        ALLOWED_HOSTS="btro.example.com",
        BTRO_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SETTINGS_MODULE="btro.settings",
    )
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "Warning" not in output, output  # drf-spectacular's warnings go to stderr


def test_check_deploy_does_flag_the_development_defaults(tmp_path):
    """The check above can fail: the embedded defaults are not production settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BTRO_", "SECRET_KEY"))}
    env.update(BTRO_VAR_DIR=str(tmp_path / "var"), DEBUG="false")
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "security.W004" in run.stderr + run.stdout  # no HSTS without BTRO_SECURE
