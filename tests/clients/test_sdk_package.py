"""The SDK is its own package: installable from clients/python, typed, and free of the server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "clients" / "python"


def test_the_sdk_imports_nothing_of_the_server(tmp_path):
    code = (
        "import sys, btro_sdk, btro_sdk.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'rest_framework', 'btro', 'jobs', 'accounts', 'dashboard'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(SDK)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_wheel_holds_the_package_its_types_marker_and_the_btro_command(tmp_path):
    source = tmp_path / "src"  # setuptools writes build/ beside the sources: not in the tree
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("btro_sdk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "btro_sdk/py.typed" in names and "btro_sdk/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "btro = btro_sdk.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    requires = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"Requires-Dist: httpx" in requires
