"""The engine package stands on its own: importing every module of it loads no Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT_ALL = """
import importlib, pkgutil, sys
import jobs.separation as package
for module in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"jobs.separation.{module.name}")
print(sorted(name for name in sys.modules if name.split(".")[0] == "django"))
"""


def test_every_module_of_the_separation_package_imports_without_django() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
