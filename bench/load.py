"""Load on a production-shaped web tier: gunicorn workers, Redis cache and broker, PostgreSQL.

Not a test. Creates (and at the end drops) a database of its own, `btro_load`, and uses
Redis databases 11 (broker) and 12 (cache); all traffic goes to 127.0.0.1 and every phase
is bounded in time. Prints:

- polling: N clients, each on its own key and job, polling every 2 s: p50/p99 latency and
  the error rate (for well-behaved pollers, any answer but 200 is an error, 429 included);
- overshoot: one key hammering one job from many threads: 200s per rate-limit window
  against BTRO_RATE_POLL;
- creation: jobs/s creating live jobs from 10 MB uploads;
- upload memory: the web process's RSS growth while it takes a 100 MB upload.

    python -m bench.load                      # about 2 minutes
    python -m bench.load --clients 100 --seconds 60 --uploads 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "load"
DB_NAME = "btro_load"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "CACHE_URL": "redis://127.0.0.1:6379/12",
    "BROKER_URL": "redis://127.0.0.1:6379/11",
    "MEDIA_ROOT": str(OUT / "media"),
    "BTRO_VAR_DIR": str(OUT / "var"),
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": HOST,
    "LOG_LEVEL": "ERROR",  # 429s are logged as warnings: not what this measures
    "DJANGO_SETTINGS_MODULE": "btro.settings",
    "BTRO_FREE_CREDITS": "100000",
}


# Setup -----------------------------------------------------------------------------


def recreate_database(name: str = DB_NAME) -> None:
    drop_database(name, create=True)


def drop_database(name: str = DB_NAME, create: bool = False) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            cur.execute(f"CREATE DATABASE {name}")
    conn.close()


def flush_redis() -> None:
    import redis

    for url in (ENV["CACHE_URL"], ENV["BROKER_URL"]):
        redis.Redis.from_url(url).flushdb()


def write_wav(path: Path, size: int) -> Path:
    """A 16-bit stereo 44.1 kHz WAV of about `size` bytes, written in blocks."""
    import numpy as np
    import soundfile as sf

    if path.exists() and abs(path.stat().st_size - size) < 4096:
        return path
    frames = (size - 44) // 4
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", 44100, 2, format="WAV", subtype="PCM_16") as out:
        for start in range(0, frames, 1 << 18):
            n = min(1 << 18, frames - start)
            out.write((0.1 * rng.standard_normal((n, 2))).astype(np.float32))
    return path


def django_setup() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_principals(n: int, wav: Path) -> list[dict]:
    """n accounts, each with a test key and a test job, and a live key."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.services import api_key_create, user_create
    from jobs.services import job_create

    data = wav.read_bytes()
    out = []
    run = secrets.token_hex(3)
    for i in range(n):
        user = user_create(email=f"load{i}-{run}@example.com")
        key, secret = api_key_create(user=user, mode="test")
        live_secret = api_key_create(user=user, mode="live")[1]
        job = job_create(
            user=user,
            livemode=False,
            upload=SimpleUploadedFile("t.wav", data),
            tier="basic",
            format="wav",
        )
        out.append({"secret": secret, "key_pk": key.pk, "job": job.id, "live": live_secret})
    return out


def start_gunicorn(
    port: int, workers: int, log: Path, env: dict[str, str] = ENV
) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "btro.wsgi", "-w", str(workers)]
    cmd += ["-b", f"{HOST}:{port}", "--timeout", "120"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/v1/jobs")[0] == 401:
                return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not start; see {log}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# HTTP ------------------------------------------------------------------------------


def request(port: int, method: str, path: str, secret: str | None = None, timeout: float = 30):
    """(status, seconds, headers) of one request on a fresh connection, as pollers do."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started, dict(response.getheaders())
    finally:
        conn.close()


def upload(port: int, secret: str, wav: Path, tier: str = "basic") -> tuple[int, float, dict]:
    """POST /v1/jobs streaming the file from disk: the client holds one block at a time."""
    boundary = "btro-load-" + secrets.token_hex(8)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="tier"\r\n\r\n{tier}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{wav.name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + wav.stat().st_size + len(tail)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    try:
        conn.putrequest("POST", "/v1/jobs")
        conn.putheader("Authorization", f"Bearer {secret}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        conn.send(head)
        with wav.open("rb") as fh:
            while block := fh.read(1 << 20):
                conn.send(block)
        conn.send(tail)
        response = conn.getresponse()
        body = response.read()
        return response.status, time.perf_counter() - started, json.loads(body or b"{}")
    finally:
        conn.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


# Phases ----------------------------------------------------------------------------


def phase_polling(port: int, principals: list[dict], seconds: float, interval: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(p: dict) -> None:
        time.sleep(random.uniform(0, interval))  # spread the first polls, as real clients are
        while time.monotonic() < deadline:
            tick = time.monotonic()
            try:
                status, took, _ = request(port, "GET", f"/v1/jobs/{p['job']}", p["secret"])
            except OSError:
                status, took = -1, 0.0
            with lock:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1
            time.sleep(max(0.0, interval + random.uniform(-0.1, 0.1) - (time.monotonic() - tick)))

    for p in principals:  # warm every worker (first requests import the URLconf, DRF, ...)
        request(port, "GET", f"/v1/jobs/{p['job']}", p["secret"])
    time.sleep(interval)
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(p,)) for p in principals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(statuses.values())
    errors = total - statuses.get(200, 0)
    return {
        "clients": len(principals),
        "requests": total,
        "rps": total / seconds,
        "p50_ms": 1000 * pct(latencies, 50),
        "p99_ms": 1000 * pct(latencies, 99),
        "max_ms": 1000 * max(latencies, default=0),
        "errors": errors,
        "error_rate": errors / max(1, total),
        "statuses": statuses,
    }


def _window_end(ts: int, value: str, period: int) -> int:
    """django-ratelimit's window for `value` at `ts` (see django_ratelimit.core._get_window)."""
    w = ts - (ts % period) + (zlib.crc32(value.encode()) % period)
    return w + period if w < ts else w


def phase_overshoot(
    port: int, p: dict, seconds: float, threads: int, rate: str, per_second: float
) -> dict:
    """Bursts of `threads` simultaneous polls, `per_second` in all: over the poll limit,
    under the per-key read limit (which would otherwise lock the key out for its minute)."""
    count, per = rate.split("/")
    limit = int(count)
    period = int(per[:-1] or 1) * {"s": 1, "m": 60, "h": 3600}[per[-1]]
    scope = f"{p['key_pk']}:{p['job']}"
    oks: dict[int, int] = {}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    rounds = int(seconds * per_second / threads)
    gap = threads / per_second
    barrier = threading.Barrier(threads)
    started = time.monotonic()

    def hammer() -> None:
        for i in range(rounds):
            time.sleep(max(0.0, started + i * gap - time.monotonic()))
            barrier.wait()
            sent = time.time()
            try:
                status, _, _ = request(port, "GET", f"/v1/jobs/{p['job']}", p["secret"])
            except OSError:
                status = -1
            got = time.time()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:  # the server counted it between send and answer
                    end = _window_end(int((sent + got) / 2), scope, period)
                    oks[end] = oks.get(end, 0) + 1

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    full = sorted(oks.items())[1:-1]  # the first and last windows are partial
    over = [max(0, n - limit) for _, n in full]
    total = sum(statuses.values())
    return {
        "limit": rate,
        "threads": threads,
        "requests": total,
        "rps": total / (time.monotonic() - started),
        "windows": len(full),
        "oks_per_window": [n for _, n in full],
        "max_overshoot": max(over, default=0),
        "statuses": statuses,
        "unintended": total - statuses.get(200, 0) - statuses.get(429, 0),
    }


def phase_create(port: int, principals: list[dict], wav: Path, n: int, concurrency: int) -> dict:
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    todo = list(range(n))

    def worker(i: int) -> None:
        secret = principals[i % len(principals)]["live"]
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            status, took, _ = upload(port, secret, wav)
            with lock:
                results.append((status, took))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    took = [t for _, t in results]
    size_mb = wav.stat().st_size / 1e6
    ok = sum(1 for s, _ in results if s == 201)
    return {
        "uploads": n,
        "size_mb": size_mb,
        "concurrency": concurrency,
        "created": ok,
        "other": sorted({s for s, _ in results if s != 201}),
        "jobs_per_s": ok / wall,
        "mb_per_s": ok * size_mb / wall,
        "p50_s": pct(took, 50),
        "max_s": max(took, default=0),
    }


def phase_upload_memory(port: int, proc: subprocess.Popen, secret: str, wav: Path, warm: Path):
    import psutil

    master = psutil.Process(proc.pid)
    worker = master.children()[0]
    for _ in range(2):  # warm the code paths (imports, parsers) with smaller uploads first
        upload(port, secret, warm)
    baseline = worker.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, worker.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    status, took, body = upload(port, secret, wav)
    done.set()
    sampler.join()
    after = worker.memory_info().rss
    return {
        "size_mb": wav.stat().st_size / 1e6,
        "status": status,
        "seconds": took,
        "baseline_mb": baseline / 2**20,
        "peak_growth_mb": (peak - baseline) / 2**20,
        "after_growth_mb": (after - baseline) / 2**20,
        "error": body.get("error"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=40, help="polling phase")
    parser.add_argument("--interval", type=float, default=2.0, help="each client's poll period")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--hammer-seconds", type=float, default=30)
    parser.add_argument("--hammer-threads", type=int, default=8)
    parser.add_argument("--hammer-rate", type=float, default=8, help="requests/s, in bursts")
    parser.add_argument("--uploads", type=int, default=12, help="10 MB uploads to create")
    parser.add_argument("--upload-concurrency", type=int, default=4)
    parser.add_argument("--big-mb", type=float, default=100)
    parser.add_argument("--port", type=int, default=18431)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT / "media", ignore_errors=True)
    log = OUT / "gunicorn.log"
    log.write_text("")
    recreate_database()
    flush_redis()
    env = {**os.environ, **ENV}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    small = write_wav(OUT / "small.wav", 200_000)
    ten = write_wav(OUT / "upload-10mb.wav", 10_000_000)
    big = write_wav(OUT / f"upload-{int(args.big_mb)}mb.wav", int(args.big_mb * 1e6))
    django_setup()
    from django.conf import settings

    principals = make_principals(args.clients, small)
    print(f"load: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    proc = start_gunicorn(args.port, args.workers, log)
    try:
        polling = phase_polling(args.port, principals, args.seconds, args.interval)
        print(
            f"polling: {polling['clients']} clients every {args.interval:g} s for "
            f"{args.seconds:g} s, gunicorn -w {args.workers}: {polling['requests']} requests "
            f"({polling['rps']:.0f}/s), p50 {polling['p50_ms']:.1f} ms, p99 "
            f"{polling['p99_ms']:.1f} ms, max {polling['max_ms']:.0f} ms; errors "
            f"{polling['errors']} ({100 * polling['error_rate']:.2f} %) {polling['statuses']}"
        )
        flush_redis()  # fresh counters for the overshoot phase
        over = phase_overshoot(
            args.port,
            principals[0],
            args.hammer_seconds,
            args.hammer_threads,
            settings.BTRO_RATE_POLL,
            args.hammer_rate,
        )
        print(
            f"overshoot: one key, one job, bursts of {over['threads']} simultaneous polls for "
            f"{args.hammer_seconds:g} s ({over['rps']:.1f} req/s): limit {over['limit']}, "
            f"200s per full window {over['oks_per_window']}, "
            f"max overshoot {over['max_overshoot']}; unintended {over['unintended']} "
            f"{over['statuses']}"
        )
        create = phase_create(args.port, principals, ten, args.uploads, args.upload_concurrency)
        print(
            f"creation: {create['created']}/{create['uploads']} live jobs from "
            f"{create['size_mb']:.0f} MB uploads, {create['concurrency']} at a time: "
            f"{create['jobs_per_s']:.2f} jobs/s ({create['mb_per_s']:.0f} MB/s), p50 "
            f"{create['p50_s']:.2f} s, max {create['max_s']:.2f} s; "
            f"other statuses {create['other']}"
        )
    finally:
        stop(proc)
    proc = start_gunicorn(args.port, 1, log)
    try:
        memory = phase_upload_memory(args.port, proc, principals[1]["live"], big, ten)
        print(
            f"upload memory: {memory['size_mb']:.0f} MB upload -> {memory['status']} in "
            f"{memory['seconds']:.1f} s; web worker RSS {memory['baseline_mb']:.0f} MB before, "
            f"peak growth {memory['peak_growth_mb']:.1f} MB, "
            f"after {memory['after_growth_mb']:.1f} MB"
            + (f"; error {memory['error']}" if memory["error"] else "")
        )
    finally:
        stop(proc)
        from django.db import connections

        connections.close_all()
        flush_redis()
        drop_database()
        shutil.rmtree(OUT / "media", ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; gunicorn log: {log}")


if __name__ == "__main__":
    main()
