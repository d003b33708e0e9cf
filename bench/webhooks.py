"""Webhook deliveries under faults: real workers, a private Redis broker, real PostgreSQL,
a receiver on loopback.

Not a test. Three bursts of live jobs (the fast fake engine), each with an endpoint that
answers 200 at once: one with no fault (the latency from a job's end to its delivery), one
while this script SIGKILLs the job workers and the webhook workers (restarting them a second
later), one while it stops and restarts the broker (a Redis of its own, on a private port,
which comes back empty: every queued message is lost). Prints per burst: events lost (a job
that ended whose event never arrived), duplicates (one event id delivered more than once),
and the p50/p99 seconds from job end to delivery.

Uses the database `btro_webhooks` (re-created) and starts its own redis-server on port
6391; the shared services are never restarted.

    python -m bench.webhooks                   # 3 bursts of 40 jobs: about 4 minutes
    python -m bench.webhooks --jobs 20 --requeue 15
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.faults import Fleet

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "webhooks"
DB_NAME = "btro_webhooks"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_PORT = 6391


class PrivateRedis:
    """A redis-server of this script's own, without persistence: a restart loses everything."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="btro-bench-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(100):
            done = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if done.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)  # as a crash: nothing saved
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Receiver:
    """Records each delivery's event id and arrival time, answers 200 at once."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str, float]] = []  # event id, job id, time
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body)
                with receiver.lock:
                    receiver.arrivals.append(
                        (event["id"], event["data"]["object"]["id"], time.time())
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def prepare(env: dict[str, str]) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB_NAME}")
    conn.close()
    cmd = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, check=True)


def bench_env(broker_url: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "BROKER_URL": broker_url,
        "MEDIA_ROOT": str(OUT / "media"),
        "BTRO_VAR_DIR": str(OUT / "var"),
        "DJANGO_SETTINGS_MODULE": "btro.settings",
        "LOG_LEVEL": "WARNING",
        "BTRO_ENGINE": "tests.fake_engines:SlowEngine",
        "FAKE_ENGINE_SECONDS": str(args.job_seconds),
        "BTRO_STALE_JOB_SECONDS": str(args.stale),
        "BTRO_SWEEP_INTERVAL_SECONDS": str(args.sweep),
        "BTRO_REQUEUE_SECONDS": str(args.requeue),
        "BTRO_WEBHOOK_RESEND_SECONDS": str(args.requeue),
        "BTRO_WEBHOOK_ALLOW_PRIVATE": "true",
        "BTRO_FREE_CREDITS": "1000000",
        "CONN_MAX_AGE": "0",
    }


class WebhookFleet(Fleet):
    """Job workers (jobs, maintenance), webhook workers (webhooks) and the scheduler."""

    QUEUES = {
        "a": ["separate.dsp", "maintenance"],
        "b": ["separate.dsp", "maintenance"],
        "w": ["webhooks"],
    }

    def spawn(self, name: str) -> None:
        if name == "scheduler":
            return super().spawn(name)
        threads = "4" if name == "w" else "1"
        args = ["rundramatiq", "--processes", "2", "--threads", threads]
        args += ["--queues", *self.QUEUES[name]]
        self.procs[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(REDIS_PORT)
    redis.start()
    env = bench_env(redis.url, args)
    prepare(env)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.services import api_key_create, user_create
    from jobs.models import Job
    from jobs.services import job_create
    from tests.conftest import wav_bytes
    from webhooks.models import Event
    from webhooks.services import endpoint_create

    receiver = Receiver()
    user = user_create(email=f"webhooks-{time.time_ns()}@example.com")
    key = api_key_create(user=user, mode="live")[0]
    endpoint_create(user=user, livemode=True, url=receiver.url, enabled_events=["*"])
    log = OUT / "fleet.log"
    log.write_text("")
    fleet = WebhookFleet(env, log)
    for name in ("a", "b", "w", "scheduler"):
        fleet.spawn(name)
    time.sleep(3)
    data = wav_bytes(0.5)
    random.seed(1)
    results = []
    phases = [("healthy", ()), ("worker SIGKILLs", (1.5, 4.0, 6.5)), ("broker restart", (2.5,))]
    for kind, offsets in phases:
        start = time.time()
        burst = [
            job_create(
                user=key.user, livemode=True, upload=SimpleUploadedFile("b.wav", data), tier="basic"
            ).id
            for _ in range(args.jobs)
        ]
        for at in offsets:
            while time.time() - start < at:
                fleet.supervise()
                time.sleep(0.05)
            if kind == "worker SIGKILLs":
                for victim in (random.choice(["a", "b"]), "w"):
                    fleet.kill(victim)
                time.sleep(1.0)
                fleet.spawn("w")
                for name in ("a", "b"):
                    if name not in fleet.procs:
                        fleet.spawn(name)
            else:
                redis.stop()
                time.sleep(args.outage)
                redis.start()
        deadline = time.time() + 3 * args.requeue + args.stale + 6 * args.sweep + 60
        while time.time() < deadline:
            fleet.supervise()
            ended = Job.objects.filter(pk__in=burst).exclude(status="queued").count()
            with receiver.lock:
                arrived = {job for _, job, _ in receiver.arrivals if job in set(burst)}
            if ended == len(burst) and len(arrived) == len(burst):
                break
            time.sleep(0.25)
        time.sleep(2 * args.sweep)  # late duplicates, if any, arrive now
        jobs = {job.pk: job for job in Job.objects.filter(pk__in=burst)}
        events = {e.job_id: e.id for e in Event.objects.filter(job_id__in=burst)}
        with receiver.lock:
            arrivals = [a for a in receiver.arrivals if a[1] in jobs]
        first: dict[str, float] = {}
        for event_id, _, at in arrivals:
            first[event_id] = min(at, first.get(event_id, at))
        counts = Counter(event_id for event_id, _, _ in arrivals)
        finished = {pk: done for pk, job in jobs.items() if (done := job.completed_at) is not None}
        latency = [
            first[events[pk]] - done.timestamp()
            for pk, done in finished.items()
            if events.get(pk) in first
        ]
        results.append(
            {
                "burst": kind,
                "jobs": len(burst),
                "ended": len(finished),
                "events": len(events),
                "delivered": len(first),
                "lost": sum(1 for pk in finished if events.get(pk) not in first),
                "duplicates": sum(n - 1 for n in counts.values()),
                "p50": statistics.median(latency) if latency else None,
                "p99": percentile(latency, 0.99) if latency else None,
                "seconds": time.time() - start,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    fleet.stop()
    redis.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    parser.add_argument("--stale", type=int, default=15, help="BTRO_STALE_JOB_SECONDS")
    parser.add_argument("--sweep", type=int, default=5, help="BTRO_SWEEP_INTERVAL_SECONDS")
    parser.add_argument(
        "--requeue", type=int, default=15, help="BTRO_REQUEUE_SECONDS and ..._RESEND_SECONDS"
    )
    parser.add_argument("--outage", type=float, default=2.0, help="broker down, seconds")
    args = parser.parse_args()
    results = run(args)
    print(
        f"\nwebhooks: {args.jobs} live jobs per burst, fake engine {args.job_seconds:g} s; "
        f"2+2 job worker processes, 2x4 webhook worker threads, private Redis broker; "
        f"stale {args.stale} s, sweep {args.sweep} s, requeue/resend {args.requeue} s"
    )
    print("| burst | jobs ended | events lost | duplicates | p50 end→delivery | p99 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        p50 = f"{r['p50']:.3f} s" if r["p50"] is not None else "n/a"
        p99 = f"{r['p99']:.3f} s" if r["p99"] is not None else "n/a"
        print(
            f"| {r['burst']} | {r['ended']}/{r['jobs']} | {r['lost']} | {r['duplicates']} "
            f"| {p50} | {p99} |"
        )


if __name__ == "__main__":
    main()
