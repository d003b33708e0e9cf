"""Download the official Demucs checkpoints into a folder, checking their hashes.

The files are the ones demucs's own remote repo serves (demucs/remote/files.txt and the
bag yamls beside it); each checkpoint's name ends with the first hex digits of its sha256.
`python manage.py fetch_models` is the command line for this module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

DEFAULT_MODELS = ("htdemucs", "htdemucs_6s", "htdemucs_ft")
CHUNK = 1 << 20


class FetchError(Exception):
    """The models could not be fetched; the message says why in one line."""


def remote_root() -> Path:
    """demucs's folder of bag yamls and files.txt, found without importing torch."""
    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        raise FetchError("demucs is not installed; pip install -r requirements-neural.txt.")
    return Path(next(iter(spec.submodule_search_locations))) / "remote"


def remote_files() -> dict[str, str]:
    """Signature → download URL, as demucs.pretrained._parse_remote_files builds them."""
    from demucs.pretrained import ROOT_URL

    root = ""
    files: dict[str, str] = {}
    for line in (remote_root() / "files.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
        else:
            files[line.split("-", 1)[0]] = ROOT_URL + root + line
    return files


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def expected_prefix(filename: str) -> str:
    return filename.rsplit(".", 1)[0].rsplit("-", 1)[1]


def download(url: str, target: Path) -> int:
    """Stream `url` to `target` via a temporary file, checking the sha256 prefix in its name."""
    prefix = expected_prefix(target.name)
    digest = hashlib.sha256()
    size = 0
    handle, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if not digest.hexdigest().startswith(prefix):
            raise FetchError(
                f"{url} does not match its sha256 prefix {prefix} "
                f"(got {digest.hexdigest()[: len(prefix)]}); nothing was written."
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(
            f"Could not download {url} ({reason}); check the network, or copy the "
            f"checkpoint files into {target.parent} by hand."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return size


def copy_atomically(source: Path, target: Path) -> None:
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def fetch_models(
    names: Iterable[str], model_dir: Path, *, report: Callable[[str], object] = print
) -> None:
    """Put the bags `names` and their checkpoints in `model_dir`; files already there and
    whole are kept. Each step is told to `report` in one line."""
    names = list(names)
    root = remote_root()
    unknown = [name for name in names if not (root / f"{name}.yaml").is_file()]
    if unknown:
        known = sorted(p.stem for p in root.glob("*.yaml"))
        raise FetchError(f"Unknown model {', '.join(unknown)}; choose from {', '.join(known)}.")
    urls = remote_files()
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"Cannot create the model folder {model_dir}: {exc}") from exc

    for name in names:
        with open(root / f"{name}.yaml") as file:
            signatures = [str(sig) for sig in yaml.safe_load(file)["models"]]
        for signature in signatures:
            url = urls[signature]
            target = model_dir / url.rsplit("/", 1)[1]
            if target.is_file() and file_sha256(target).startswith(expected_prefix(target.name)):
                report(f"{target.name}: present, hash checked")
                continue
            report(f"{target.name}: downloading {url}")
            size = download(url, target)
            report(f"{target.name}: {size / 2**20:.1f} MiB, hash checked")
        # The bag goes last: its yaml present means its checkpoints are.
        copy_atomically(root / f"{name}.yaml", model_dir / f"{name}.yaml")
        report(f"{name}: ready in {model_dir}")
