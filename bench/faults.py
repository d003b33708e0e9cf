"""Faults under bursts of live jobs: real workers, real broker, real PostgreSQL.

Not a test. For each broker (Redis, RabbitMQ) and each repeat: two `rundramatiq` worker
groups and the `scheduler` run the fast fake engine on three bursts of jobs, one per
fault: this script SIGKILLs a worker group (twice, restarting it a second later), then
stops and restarts the broker, then restarts PostgreSQL. One job runs an engine that
kills its process every time; it must end `failed` after BTRO_JOB_MAX_ATTEMPTS. Prints,
per broker: jobs lost, completed twice, left queued after the recovery sweep, and recovery
seconds (fault -> the jobs it hit are done), with the spread over repeats.

WARNING: the broker and PostgreSQL restarts hit every user of the local Redis, RabbitMQ and
PostgreSQL (each outage lasts a few seconds; Redis restarts empty). Use --no-restarts to
kill workers only. The script uses a database of its own, `btro_faults` (re-created), Redis
database 10 and a RabbitMQ vhost of its own, `btro_faults` (--database, --redis-db, --vhost
pick others). The last line gives the SIGKILL recovery figures of both brokers.

    python -m bench.faults                         # both brokers, 2 repeats: about 12 minutes
    python -m bench.faults --no-restarts --repeats 3   # SIGKILL recovery only
    python -m bench.faults --brokers redis --repeats 1 --requeue 300
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
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "faults"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def broker_url(name: str, args: argparse.Namespace) -> str:
    if name == "redis":
        return f"redis://127.0.0.1:6379/{args.redis_db}"
    return f"amqp://guest:guest@127.0.0.1:5672/{args.vhost}"


# Services --------------------------------------------------------------------------


def sh(*cmd: str, check: bool = True) -> None:
    subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restart_broker(name: str, outage: float) -> None:
    if name == "redis":
        sh("redis-cli", "shutdown", "nosave", check=False)
        time.sleep(outage)
        sh("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379")
        sh("redis-cli", "config", "set", "save", "")  # as it was: no snapshots, no AOF
    else:
        sh("rabbitmqctl", "stop_app")
        time.sleep(outage)
        sh("rabbitmqctl", "start_app")


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    sh("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")


def prepare(args: argparse.Namespace) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {args.database}")
    conn.close()
    env = {**os.environ, **scenario_env("redis", args)}
    cmd = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    if "rabbitmq" in args.brokers:
        sh("rabbitmqctl", "add_vhost", args.vhost, check=False)
        sh("rabbitmqctl", "set_permissions", "-p", args.vhost, "guest", ".*", ".*", ".*")


def scenario_env(broker: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "BROKER_URL": broker_url(broker, args),
        "MEDIA_ROOT": str(OUT / "media"),
        "BTRO_VAR_DIR": str(OUT / "var"),
        "DJANGO_SETTINGS_MODULE": "btro.settings",
        "LOG_LEVEL": "WARNING",
        "BTRO_ENGINE": "tests.fake_engines:SlowEngine",
        "FAKE_ENGINE_SECONDS": str(args.job_seconds),
        "BTRO_ENGINE_BY_TIER": "studio=tests.fake_engines:SuicidalEngine",
        "BTRO_STALE_JOB_SECONDS": str(args.stale),
        "BTRO_SWEEP_INTERVAL_SECONDS": str(args.sweep),
        "BTRO_REQUEUE_SECONDS": str(args.requeue),
        "BTRO_FREE_CREDITS": "100000",
        "CONN_MAX_AGE": "0",
    }


# One scenario, in its own process (settings are read once per process) --------------


class Fleet:
    """Two worker groups and the scheduler, restarted as a supervisor would."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.procs: dict[str, subprocess.Popen] = {}
        self.unexpected_exits: list[str] = []

    def spawn(self, name: str) -> None:
        args = ["scheduler"] if name == "scheduler" else ["rundramatiq", "--processes", "2"]
        if name != "scheduler":
            args += ["--threads", "1"]
        self.procs[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def supervise(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.unexpected_exits.append(f"{name} exited {proc.returncode}")
                self.spawn(name)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


def _retrying(fn, *args, **kwargs):
    """Run a query, reconnecting while PostgreSQL restarts."""
    from django.db import InterfaceError, OperationalError, connection

    for _ in range(120):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            connection.close()
            time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back")


def scenario(broker: str, repeat: int, args: argparse.Namespace) -> dict:
    env = scenario_env(broker, args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import dramatiq
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from accounts.models import CreditEntry
    from accounts.services import api_key_create, user_create
    from jobs.models import Job
    from jobs.services import job_create, result_name
    from tests.conftest import wav_bytes

    random.seed(repeat)
    log = OUT / f"{broker}-{repeat}.log"
    log.write_text("")
    dramatiq_broker = dramatiq.get_broker()
    from jobs.engines import SEPARATION_QUEUES

    for queue in (*SEPARATION_QUEUES, "maintenance"):
        dramatiq_broker.declare_queue(queue)
    dramatiq_broker.flush_all()

    fleet = Fleet(env, log)
    for name in ("a", "b", "scheduler"):
        fleet.spawn(name)
    user = user_create(email=f"faults-{broker}-{repeat}-{time.time_ns()}@example.com")
    key = api_key_create(user=user, mode="live")[0]
    data = wav_bytes(0.5)
    # One burst per kind of fault, each run to its end, so recoveries do not overlap.
    phases: list[tuple[str, tuple[float, ...]]] = [("kill", (2.0, 7.0))]
    if args.restarts:
        phases += [("broker", (3.0,)), ("postgres", (3.0,))]
    start = time.time()
    ids: list[str] = []

    def create(name: str, tier: str) -> str:
        return job_create(
            user=key.user, livemode=True, upload=SimpleUploadedFile(name, data), tier=tier
        ).id

    # Workers up (and their separation processes started) before the burst, so that the
    # kills hit running jobs: a job per worker process, run to its end.
    warm = [create("w.wav", "basic") for _ in range(4)]
    deadline = time.time() + 120
    while _retrying(lambda: Job.objects.filter(pk__in=warm, status="queued").exists()):
        if time.time() > deadline:
            raise RuntimeError("the workers did not start within 120 s")
        fleet.supervise()
        time.sleep(0.5)
    suicidal = create("s.wav", "studio")
    events: list[dict[str, Any]] = []
    for kind, offsets in phases:
        burst_start = time.time()
        burst = [create("b.wav", "basic") for _ in range(args.jobs)]
        ids += burst

        def unfinished(burst=burst) -> set[str]:
            return set(
                Job.objects.filter(pk__in=burst, status="queued").values_list("pk", flat=True)
            )

        def running(burst=burst) -> dict[str, str]:
            """The jobs being run, and their claims."""
            alive = timezone.now() - timedelta(seconds=5)  # not runs already dead
            return dict(
                Job.objects.filter(pk__in=burst, status="queued", heartbeat_at__gt=alive)
                .exclude(claim="")
                .values_list("pk", "claim")
            )

        def watch() -> None:
            """When another run takes over each job a kill hit (its claim changes)."""
            for event in events:
                waiting = {
                    i: c for i, c in event.get("claims", {}).items() if i not in event["taken"]
                }
                if not waiting:
                    continue
                now = time.time()
                claims = dict(Job.objects.filter(pk__in=waiting).values_list("pk", "claim"))
                for i, claim in claims.items():
                    if claim != waiting[i]:
                        event["taken"][i] = now

        for at in offsets:
            while time.time() - burst_start < at:
                fleet.supervise()
                _retrying(watch)
                time.sleep(0.1)
            if kind == "kill":
                victim = random.choice(["a", "b"])
                hit = _retrying(running)
                fleet.kill(victim)
                events.append(
                    {
                        "kind": f"kill {victim}",
                        "at": time.time(),
                        "jobs": sorted(hit),
                        "claims": hit,
                        "taken": {},
                    }
                )
                time.sleep(1.0)
                fleet.spawn(victim)
            elif kind == "broker":  # what is queued or running when the broker goes
                hit = _retrying(unfinished)
                events.append({"kind": f"{broker} restart", "at": time.time(), "jobs": sorted(hit)})
                restart_broker(broker, args.outage)
            else:  # the jobs being worked on while the database goes away
                hit = _retrying(running)
                events.append({"kind": "postgres restart", "at": time.time(), "jobs": sorted(hit)})
                restart_postgres()
        # Recovery: the sweep requeues dead runs after STALE s, lost messages after REQUEUE s.
        deadline = time.time() + args.stale + args.requeue + 4 * args.sweep + 60
        while time.time() < deadline:
            fleet.supervise()
            _retrying(watch)
            if not _retrying(lambda burst=burst: unfinished(burst)):
                break
            time.sleep(0.2)
    while time.time() < deadline:  # the suicidal job, if still going
        if _retrying(lambda: Job.objects.filter(pk=suicidal, status="queued").count()) == 0:
            break
        time.sleep(0.5)
    fleet.stop()

    jobs = {job.pk: job for job in _retrying(lambda: list(Job.objects.filter(pk__in=ids)))}
    bad = _retrying(lambda: Job.objects.get(pk=suicidal))
    costs: dict[str, int] = {}
    refunds: dict[str, int] = {}
    for entry in _retrying(lambda: list(CreditEntry.objects.filter(user=user).exclude(job_id=""))):
        target = costs if entry.kind == "cost" else refunds
        target[entry.job_id] = target.get(entry.job_id, 0) + 1
    succeeded = [j for j in jobs.values() if j.status == "succeeded"]
    missing_stems = sum(
        1
        for j in succeeded
        for stem in j.result["stems"]
        if not default_storage.exists(result_name(j, stem))
    )
    text = log.read_text(errors="replace")
    recovery = []
    for event in events:
        if event["kind"].startswith("kill"):  # the jobs the killed group held: run again
            event["jobs"] = [i for i in event["jobs"] if jobs[i].attempts > 1]
        done = [jobs[i].completed_at.timestamp() for i in event["jobs"] if jobs[i].completed_at]
        taken = [at for i, at in event.get("taken", {}).items() if i in event["jobs"]]
        recovery.append(
            {
                "kind": event["kind"],
                "jobs_hit": len(event["jobs"]),
                "seconds": (max(done) - event["at"]) if done else None,
                # a killed run's job taken over by another (the lease's part of the recovery;
                # the rest is the wait behind the burst and the run itself)
                "taken_over": (max(taken) - event["at"]) if taken else None,
                "unfinished": sum(1 for i in event["jobs"] if not jobs[i].completed_at),
            }
        )
    try:
        dramatiq_broker.flush_all()
    except Exception:  # this process's connection died with the broker restart
        pass
    return {
        "broker": broker,
        "repeat": repeat,
        "jobs": len(ids),
        "succeeded": len(succeeded),
        "failed": sorted({f"{j.error_type}" for j in jobs.values() if j.status == "failed"}),
        "failed_count": sum(1 for j in jobs.values() if j.status == "failed"),
        "left_queued": sum(1 for j in jobs.values() if j.status == "queued"),
        "attempts": dict(
            sorted(
                (a, sum(1 for j in jobs.values() if j.attempts == a))
                for a in {j.attempts for j in jobs.values()}
            )
        ),
        "double_finish_logged": text.count("another run owns it now"),
        "cost_entries_not_one": sum(1 for i in ids if costs.get(i, 0) != 1),
        "refunds_on_succeeded": sum(1 for j in succeeded if refunds.get(j.pk)),
        "missing_stems": missing_stems,
        "suicidal": {
            "status": bad.status,
            "error": bad.error_type,
            "attempts": bad.attempts,
            "seconds": (bad.completed_at.timestamp() - start) if bad.completed_at else None,
            "refunded": refunds.get(bad.pk, 0),
        },
        "recovery": recovery,
        "unexpected_exits": fleet.unexpected_exits,
        "burst_seconds": (
            max(
                (j.completed_at.timestamp() for j in jobs.values() if j.completed_at), default=start
            )
            - start
        ),
    }


# Report ----------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return (
        f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f}, "
        f"n={len(values)})"
    )


def _kind(event: str) -> str:
    return "worker SIGKILL" if event.startswith("kill") else event


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"faults: {args.jobs} jobs of {args.job_seconds:g} s per burst + 1 suicidal job; "
        f"2 worker groups x 2 processes; stale {args.stale} s, sweep {args.sweep} s, "
        f"requeue {args.requeue} s, broker outage {args.outage:g} s"
    )
    for broker in args.brokers:
        runs = [r for r in results if r["broker"] == broker]
        if not runs:
            continue
        lost = [r["left_queued"] + r["failed_count"] for r in runs]
        print(f"\n{broker}: {len(runs)} repeat(s)")
        print(f"  jobs lost (not succeeded): {lost}; failed as {[r['failed'] for r in runs]}")
        print(f"  left queued after the recovery sweep: {[r['left_queued'] for r in runs]}")
        twice = [
            r["double_finish_logged"] + r["cost_entries_not_one"] + r["refunds_on_succeeded"]
            for r in runs
        ]
        print(
            f"  completed twice: {twice} (double-finish log lines, ledger costs != 1, refunds "
            f"on succeeded jobs); missing stems {[r['missing_stems'] for r in runs]}"
        )
        print(f"  attempts per job: {[r['attempts'] for r in runs]}")
        kinds = sorted({_kind(e["kind"]) for r in runs for e in r["recovery"]})
        for kind in kinds:
            secs = [
                e["seconds"]
                for r in runs
                for e in r["recovery"]
                if _kind(e["kind"]) == kind and e["seconds"] is not None
            ]
            hit = [e["jobs_hit"] for r in runs for e in r["recovery"] if _kind(e["kind"]) == kind]
            print(f"  recovery after {kind}: {spread(secs)} s (jobs hit {hit})")
            taken = [
                e["taken_over"]
                for r in runs
                for e in r["recovery"]
                if _kind(e["kind"]) == kind and e.get("taken_over") is not None
            ]
            if taken:
                print(f"    of which until another worker took the jobs over: {spread(taken)} s")
        print(
            "  suicidal job: "
            + "; ".join(
                f"{r['suicidal']['status']} {r['suicidal']['error']} after "
                f"{r['suicidal']['attempts']} attempts, refunded {r['suicidal']['refunded']}"
                for r in runs
            )
        )
        print(f"  all bursts done in {spread([r['burst_seconds'] for r in runs])} s")
        exits = [x for r in runs for x in r["unexpected_exits"]]
        if exits:
            print(f"  processes that exited by themselves (restarted): {exits}")
    figures = []
    for broker in args.brokers:
        secs = [
            e["seconds"]
            for r in results
            if r["broker"] == broker
            for e in r["recovery"]
            if _kind(e["kind"]) == "worker SIGKILL" and e["seconds"] is not None
        ]
        taken = [
            e["taken_over"]
            for r in results
            if r["broker"] == broker
            for e in r["recovery"]
            if _kind(e["kind"]) == "worker SIGKILL" and e.get("taken_over") is not None
        ]
        figures.append(f"{broker} {spread(secs)} s (taken over after {spread(taken)} s)")
    print(f"\nSIGKILL recovery (kill -> the last job it hit done): {'; '.join(figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", type=lambda s: s.split(","), default=["redis", "rabbitmq"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--stale", type=int, default=10, help="BTRO_STALE_JOB_SECONDS")
    parser.add_argument("--sweep", type=int, default=5, help="BTRO_SWEEP_INTERVAL_SECONDS")
    parser.add_argument("--requeue", type=int, default=30, help="BTRO_REQUEUE_SECONDS")
    parser.add_argument("--outage", type=float, default=3.0, help="broker down, seconds")
    parser.add_argument("--no-restarts", dest="restarts", action="store_false")
    parser.add_argument("--database", default="btro_faults", help="database, re-created")
    parser.add_argument("--redis-db", type=int, default=10, help="Redis database number")
    parser.add_argument("--vhost", default="btro_faults", help="RabbitMQ vhost")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, args.repeat, args)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT / "media", ignore_errors=True)
    prepare(args)
    results = []
    for repeat in range(args.repeats):
        for broker in args.brokers:
            cmd = [sys.executable, "-m", "bench.faults", "--scenario", broker]
            cmd += ["--repeat", str(repeat)] + sys.argv[1:]
            run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            line = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
            if run.returncode != 0 or not line.startswith("{"):
                print(f"{broker} repeat {repeat} failed:\n{run.stderr[-3000:]}")
                continue
            results.append(json.loads(line))
            print(f"{broker} repeat {repeat}: {line}", file=sys.stderr)
    report(results, args)


if __name__ == "__main__":
    main()
