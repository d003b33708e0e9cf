"""Measured scaling of the production shape on loopback: workers, then the web tier.

Not a test. Runs gunicorn (bench.settings: the product plus a bare view), `rundramatiq`
workers and the scheduler on RabbitMQ (a vhost of its own, `btro_scale`) or Redis, with
PostgreSQL (`btro_bench_scale`, re-created and dropped) and a SeaweedFS of its own for
uploads and stems. Live jobs are posted over HTTP by many clients at once, each on its key.

- sleep: an engine that sleeps `--sleep` s per job (tests.fake_engines.SlowEngine, a stand-in
  for GPU time): jobs/s for 1, 2, 4 and 8 worker processes, and the efficiency against
  linear (N x the 1-process rate) and against the ideal N / sleep;
- dsp: the CPU engine on `--dsp-audio` s tracks: jobs/s for 1 and 2 worker processes and the
  machine's CPU use meanwhile (this machine's cores, shared with whatever else runs on it);
- web: `GET /v1/jobs/:id` with a live key against `GET /bench/bare/:id` (a DRF view, one
  query, no authentication or throttle) in the same run, wrk at a fixed concurrency,
  alternated `--web-rounds` times. The rate limits are raised so that every answer is a 200:
  the throttles still count each request.

Writes bench/results/scale.md (a table) and bench/results/scale.png.

    python -m bench.scale                          # about 5 minutes on 2 cores
    python -m bench.scale --only web --web-rounds 5
    python -m bench.scale --broker redis --repeats 1
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import (
    HOST,
    drop_database,
    recreate_database,
    request,
    start_gunicorn,
    stop,
    upload,
    write_wav,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "scale"
RESULTS = ROOT / "bench" / "results"
DB_NAME = "btro_bench_scale"
VHOST = "btro_scale"
BUCKET = "btro-scale"
WARM_TIER = "studio"  # the instant engine, for warming the workers up


def base_env(args: argparse.Namespace) -> dict[str, str]:
    broker = args.redis_broker if args.broker == "redis" else args.amqp
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "CACHE_URL": args.cache,
        "BROKER_URL": broker,
        "MEDIA_ROOT": str(OUT / "media"),
        "BTRO_VAR_DIR": str(OUT / "var"),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BTRO_FREE_CREDITS": "10000000",
        "BTRO_RATE_CREATE": "100000/m",
        "BTRO_RATE_READ": "100000000/m",
        "BTRO_RATE_POLL": "100000000/6s",
        "BTRO_ENGINE_BY_TIER": f"{WARM_TIER}=tests.fake_engines:SplitEngine",
    }


# Workers ---------------------------------------------------------------------------


class Fleet:
    """`rundramatiq --processes N --threads 1` and the scheduler, up and ready."""

    def __init__(self, processes: int, env: dict[str, str], log: Path) -> None:
        from tests.services import spawn

        log.write_text("")
        self.processes = [
            spawn(["rundramatiq", "--processes", str(processes), "--threads", "1"], env, log),
            spawn(["scheduler"], env, log),
        ]
        deadline = time.monotonic() + 120
        while log.read_text(errors="replace").count("ready for action") < processes:
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                self.stop()
                raise SystemExit(f"workers did not start; see {log}")
            time.sleep(0.2)

    def warm(self) -> int:
        """Worker processes whose separation child is up (spawned on a process's first job)."""
        import psutil

        try:
            workers = psutil.Process(self.processes[0].pid).children()
        except psutil.NoSuchProcess:
            return 0
        warm = 0
        for worker in workers:
            try:
                cmdlines = [" ".join(c.cmdline()) for c in worker.children()]
            except psutil.NoSuchProcess:
                continue
            warm += any("spawn_main" in cmdline for cmdline in cmdlines)
        return warm

    def pids(self) -> list[int]:
        import psutil

        out = []
        for proc in self.processes:
            try:
                parent = psutil.Process(proc.pid)
                out += [parent.pid] + [c.pid for c in parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def stop(self) -> None:
        from tests.services import kill

        for proc in self.processes:
            kill(proc)


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def burst(
    port: int, secrets_: list[str], wav: Path, jobs: int, tier: str = "basic"
) -> tuple[float, float, list[str]]:
    """`jobs` live jobs posted by len(secrets_) clients at once: (start time, the last
    answer's time, job ids)."""
    ids: list[str] = []
    errors: list[object] = []
    lock = threading.Lock()
    todo = list(range(jobs))
    gate = threading.Barrier(len(secrets_) + 1)

    def client(secret: str) -> None:
        gate.wait()
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            status, _, body = upload(port, secret, wav, tier)
            job_id = body.get("id") if status == 201 else None
            with lock:
                if job_id:
                    ids.append(job_id)
                else:
                    errors.append((status, body))

    threads = [threading.Thread(target=client, args=(s,)) for s in secrets_]
    for t in threads:
        t.start()
    started = time.time()
    gate.wait()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"job creation failed: {errors[:3]}")
    return started, time.time(), ids


def wait_done(ids: list[str], timeout: float) -> list:
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(Job.objects.filter(pk__in=ids))
        if all(j.completed_at for j in jobs):
            return jobs
        time.sleep(0.1)
    raise SystemExit(f"jobs not done within {timeout:.0f} s")


def run_workers(
    port: int,
    web_pids: list[int],
    env: dict[str, str],
    keys: list[str],
    wav: Path,
    processes: int,
    jobs: int,
) -> dict:
    """One measurement: a fresh fleet, a burst, its jobs/s from the first POST to the last
    completion, and CPU seconds (workers, web, the whole machine) over that span."""
    import psutil

    fleet = Fleet(processes, env, OUT / f"workers-{processes}.log")
    try:
        # Instant jobs (WARM_TIER) until every process has spawned its separation child: a
        # one-time cost of a worker's first job, not what a long-running fleet pays per job.
        deadline = time.monotonic() + 180
        while fleet.warm() < processes:
            if time.monotonic() > deadline:
                raise SystemExit("worker processes did not all take a warm-up job")
            wait_done(burst(port, keys, wav, 2 * processes, WARM_TIER)[2], 120)
        pids = fleet.pids()
        cpu_before, machine_before = cpu_seconds(pids), psutil.cpu_times()
        web_before = cpu_seconds(web_pids)
        started, posted, ids = burst(port, keys, wav, jobs)
        done = wait_done(ids, 60 + 30 * jobs)
        cpu_after, machine_after = cpu_seconds(pids), psutil.cpu_times()
        web_after = cpu_seconds(web_pids)
    finally:
        fleet.stop()
    bad = [j.error_type for j in done if j.status != "succeeded"]
    if bad:
        raise SystemExit(f"{len(bad)} jobs did not succeed: {sorted(set(bad))}")
    ends = sorted(j.completed_at.timestamp() for j in done)
    wall = ends[-1] - started
    # Once the first `processes` jobs are done every process has had work: the rate from
    # then on is the workers', whatever the pace of the posting before.
    tail = ends[-1] - ends[min(processes, len(ends)) - 1]
    steady = (len(ends) - processes) / tail if tail > 0 else len(ends) / wall
    busy = (
        sum(machine_after)
        - machine_after.idle
        - machine_after.iowait
        - (sum(machine_before) - machine_before.idle - machine_before.iowait)
    )
    span = sum(machine_after) - sum(machine_before)
    return {
        "processes": processes,
        "jobs": jobs,
        "seconds": wall,
        "jobs_per_s": jobs / wall,
        "steady_jobs_per_s": steady,
        "posted_s": posted - started,
        "worker_cpu_s_per_job": (cpu_after - cpu_before) / jobs,
        "web_cpu_s_per_job": (web_after - web_before) / jobs,
        "machine_cpu": busy / span * (os.cpu_count() or 1) if span else 0.0,  # cores busy
        "fleet_cpu": (cpu_after - cpu_before + web_after - web_before) / wall,
    }


# Web -------------------------------------------------------------------------------


def wrk(url: str, secret: str | None, seconds: float, connections: int) -> dict:
    """Requests/s, non-2xx answers and the median latency of one wrk run."""
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--latency"]
    if secret:
        cmd += ["-H", f"Authorization: Bearer {secret}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    if rps is None or requests is None:
        raise RuntimeError(f"wrk printed no request rate:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else 0.0,
    }


def run_web(
    port: int, web_pids: list[int], job_id: str, secret: str, args: argparse.Namespace
) -> list[dict]:
    import resource

    rounds = []
    api = f"http://{HOST}:{port}/v1/jobs/{job_id}"
    bare = f"http://{HOST}:{port}/bench/bare/{job_id}"
    for url, key in ((api, secret), (bare, None)):  # warm every gunicorn worker
        wrk(url, key, 1, args.connections)
    for i in range(args.web_rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        pair: dict[str, Any] = {}
        order = (("api", api, secret), ("bare", bare, None))
        for name, url, key in order if i % 2 == 0 else order[::-1]:  # A B, B A: no drift
            cpu = cpu_seconds(web_pids)
            pair[name] = wrk(url, key, args.web_seconds, args.connections)
            cpu = cpu_seconds(web_pids) - cpu
            pair[name]["cpu_ms"] = 1000 * cpu / max(1, pair[name]["requests"])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter() - started
        pair["wrk_cores"] = (
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        ) / wall
        pair["ratio"] = pair["api"]["rps"] / pair["bare"]["rps"]
        pair["cpu_ratio"] = pair["bare"]["cpu_ms"] / pair["api"]["cpu_ms"]
        rounds.append(pair)
        print(
            f"web: api {pair['api']['rps']:.0f}/s, bare {pair['bare']['rps']:.0f}/s, "
            f"ratio {pair['ratio']:.2f}; CPU ms/request api {pair['api']['cpu_ms']:.1f}, "
            f"bare {pair['bare']['cpu_ms']:.1f}; wrk {pair['wrk_cores']:.2f} cores",
            file=sys.stderr,
        )
    return rounds


# Report ----------------------------------------------------------------------------


def spread(values: list[float], fmt: str = ".2f") -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return (
        f"{format(statistics.median(values), fmt)} "
        f"({format(min(values), fmt)}–{format(max(values), fmt)})"
    )


def cpu_per_job(rows: list[dict]) -> str:
    workers = spread([r["worker_cpu_s_per_job"] for r in rows])
    return f"{workers} + {spread([r['web_cpu_s_per_job'] for r in rows])}"


def cores(rows: list[dict]) -> str:
    return f"{spread([r['fleet_cpu'] for r in rows])} / {spread([r['machine_cpu'] for r in rows])}"


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [
        "# bench.scale",
        "",
        f"{os.cpu_count()} cores, broker {args.broker}, gunicorn -w {args.web_workers}; "
        f"median (min–max) of {args.repeats} repeat(s) per row, {args.web_rounds} web rounds. "
        f"Load average {os.getloadavg()[0]:.1f} at the end (the cores are shared).",
        "",
    ]
    sleep = results.get("sleep")
    if sleep:
        one = statistics.median(r["jobs_per_s"] for r in sleep if r["processes"] == 1)
        one_steady = statistics.median(r["steady_jobs_per_s"] for r in sleep if r["processes"] == 1)
        lines += [
            f"## Sleep engine ({args.sleep:g} s a job, {args.waves} jobs per process a burst)",
            "",
            "End to end: first POST to last job done. Steady: from the N-th job done (every "
            "process has had work) to the last, so the posting's pace is left out.",
            "",
            "| worker processes | jobs/s end to end | vs linear | steady jobs/s | vs linear "
            "| steady vs ideal (N / sleep) | burst posted in s | CPU s/job: workers + web "
            "| cores busy: bench fleet / machine |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for n in args.processes:
            rows = [r for r in sleep if r["processes"] == n]
            rate = [r["jobs_per_s"] for r in rows]
            steady = [r["steady_jobs_per_s"] for r in rows]
            lines.append(
                f"| {n} | {spread(rate)} | {spread([x / (n * one) for x in rate])} | "
                f"{spread(steady)} | {spread([x / (n * one_steady) for x in steady])} | "
                f"{spread([x * args.sleep / n for x in steady])} | "
                f"{spread([r['posted_s'] for r in rows], '.1f')} | {cpu_per_job(rows)} | "
                f"{cores(rows)} |"
            )
        lines.append("")
    dsp = results.get("dsp")
    if dsp:
        one = statistics.median(r["jobs_per_s"] for r in dsp if r["processes"] == 1)
        lines += [
            f"## dsp engine ({args.dsp_audio:g} s stereo tracks, {args.dsp_jobs} jobs a burst)",
            "",
            "| worker processes | jobs/s | vs 1 process | CPU s/job: workers + web | "
            "cores busy: bench fleet / machine |",
            "| --- | --- | --- | --- | --- |",
        ]
        for n in sorted({r["processes"] for r in dsp}):
            rows = [r for r in dsp if r["processes"] == n]
            rate = [r["jobs_per_s"] for r in rows]
            lines.append(
                f"| {n} | {spread(rate, '.3f')} | {spread([x / one for x in rate])} | "
                f"{cpu_per_job(rows)} | {cores(rows)} |"
            )
        lines.append("")
    web = results.get("web")
    if web:
        lines += [
            f"## Web tier (wrk, {args.connections} connections, {args.web_seconds:g} s a run)",
            "",
            "Short runs alternated A B, B A, so that the other users of the machine weigh on "
            "both alike; the ratio is taken per round.",
            "",
            "| endpoint | requests/s | p50 ms | gunicorn CPU ms/request | non-2xx |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, label in (("api", "GET /v1/jobs/:id (live key)"), ("bare", "bare DRF view")):
            lines.append(
                f"| {label} | {spread([r[name]['rps'] for r in web], '.0f')} | "
                f"{spread([r[name]['p50_ms'] for r in web], '.1f')} | "
                f"{spread([r[name]['cpu_ms'] for r in web], '.1f')} | "
                f"{sum(r[name]['non_2xx'] for r in web)} |"
            )
        lines += [
            "",
            "/v1/jobs/:id ÷ bare, paired by round: requests/s "
            f"{spread([r['ratio'] for r in web])}; "
            f"by gunicorn CPU per request (bare ÷ /v1, PostgreSQL's and Redis' own CPU not "
            f"counted) {spread([r['cpu_ratio'] for r in web])}. "
            f"wrk itself used {spread([r['wrk_cores'] for r in web])} cores.",
            "",
        ]
    return "\n".join(lines)


def plot(results: dict, args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("sleep", "dsp", "web") if results.get(k)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        rows = results[name]
        if name in ("sleep", "dsp"):
            ns = sorted({r["processes"] for r in rows})
            ax.scatter([r["processes"] for r in rows], [r["jobs_per_s"] for r in rows], s=12)
            med = [
                statistics.median(r["jobs_per_s"] for r in rows if r["processes"] == n) for n in ns
            ]
            ax.plot(ns, med, marker="o", label="end to end (median)")
            if name == "sleep":
                steady = [
                    statistics.median(r["steady_jobs_per_s"] for r in rows if r["processes"] == n)
                    for n in ns
                ]
                ax.plot(ns, steady, marker="s", label="steady (median)")
            ax.plot(ns, [med[0] * n / ns[0] for n in ns], "--", label="linear from 1")
            if name == "sleep":
                ax.plot(ns, [n / args.sleep for n in ns], ":", label="ideal N / sleep")
            ax.set_xticks(ns)
            ax.set_xlabel("worker processes")
            ax.set_ylabel("jobs/s")
            ax.set_title(f"{name} engine")
            ax.legend()
        else:
            api = [r["api"]["rps"] for r in rows]
            bare = [r["bare"]["rps"] for r in rows]
            ax.bar(["/v1/jobs/:id", "bare view"], [statistics.median(api), statistics.median(bare)])
            ax.scatter([0] * len(api) + [1] * len(bare), api + bare, color="k", s=10, zorder=3)
            ax.set_ylabel("requests/s")
            ax.set_title(f"web tier (ratio {statistics.median(r['ratio'] for r in rows):.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# Main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=lambda s: s.split(","), default=["sleep", "dsp", "web"])
    parser.add_argument("--broker", choices=["rabbitmq", "redis"], default="rabbitmq")
    parser.add_argument("--amqp", default=f"amqp://guest:guest@127.0.0.1:5672/{VHOST}")
    parser.add_argument("--redis-broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--processes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8]
    )
    parser.add_argument("--sleep", type=float, default=4.0, help="seconds a sleep-engine job")
    parser.add_argument("--waves", type=int, default=4, help="sleep jobs per worker process")
    parser.add_argument("--clients", type=int, default=16, help="clients posting at once")
    parser.add_argument("--dsp-audio", type=float, default=10.0, help="seconds of audio")
    parser.add_argument("--dsp-jobs", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--web-rounds", type=int, default=10)
    parser.add_argument("--web-seconds", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=18531)
    args = parser.parse_args()
    if not shutil.which("wrk") and "web" in args.only:
        raise SystemExit("wrk is missing: apt-get install wrk")

    import psutil

    from tests.services import seaweedfs

    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT / "weed", ignore_errors=True)
    env = base_env(args)
    recreate_database(DB_NAME)
    if args.broker == "rabbitmq":
        for cmd in (["add_vhost", VHOST], ["set_permissions", "-p", VHOST, "guest"] + [".*"] * 3):
            subprocess.run(["rabbitmqctl", *cmd], capture_output=True)
    results: dict[str, list] = {}
    with seaweedfs(OUT / "weed") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        env.update(s3.env(BUCKET))
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=os.environ,
            check=True,
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        import dramatiq

        logging.getLogger("pika").setLevel(logging.ERROR)  # flush_all of undeclared queues
        from django.core.files.uploadedfile import SimpleUploadedFile

        from accounts.services import api_key_create, user_create
        from jobs.engines import SEPARATION_QUEUES
        from jobs.services import job_create

        broker = dramatiq.get_broker()
        for queue in (*SEPARATION_QUEUES, "maintenance"):
            broker.declare_queue(queue)
        broker.flush_all()
        run = secrets.token_hex(3)
        keys = [
            api_key_create(user=user_create(email=f"scale{i}-{run}@example.com"), mode="live")[1]
            for i in range(args.clients)
        ]
        short = write_wav(OUT / "short.wav", 2 * 44100 * 4)  # 2 s: the sleep engine's input
        log = OUT / "gunicorn.log"
        log.write_text("")
        gunicorn_env = {**env, "LOG_LEVEL": "ERROR"}
        web = start_gunicorn(args.port, args.web_workers, log, gunicorn_env)
        port = args.port
        web_pids = [web.pid, *(c.pid for c in psutil.Process(web.pid).children())]
        try:
            if "sleep" in args.only:
                worker_env = {
                    **env,
                    "LOG_LEVEL": "INFO",
                    "FAKE_ENGINE_SECONDS": str(args.sleep),
                    "BTRO_ENGINE": "tests.fake_engines:SlowEngine",
                }
                rows = results["sleep"] = []
                for repeat in range(args.repeats):
                    for n in args.processes:
                        jobs = n * args.waves
                        row = run_workers(port, web_pids, worker_env, keys, short, n, jobs)
                        rows.append(row)
                        print(f"sleep #{repeat}: {row}", file=sys.stderr)
            if "dsp" in args.only:
                track = write_wav(OUT / "dsp.wav", int(args.dsp_audio * 44100 * 4))
                worker_env = {**env, "LOG_LEVEL": "INFO", "BTRO_ENGINE": "dsp"}
                rows = results["dsp"] = []
                for repeat in range(args.repeats):
                    for n in (1, 2):
                        row = run_workers(port, web_pids, worker_env, keys, track, n, args.dsp_jobs)
                        rows.append(row)
                        print(f"dsp #{repeat}: {row}", file=sys.stderr)
            if "web" in args.only:
                user = user_create(email=f"scale-web-{run}@example.com")
                key, secret = api_key_create(user=user, mode="live")
                job = job_create(
                    user=user,
                    livemode=True,
                    upload=SimpleUploadedFile("t.wav", short.read_bytes()),
                    tier="basic",
                )
                assert request(args.port, "GET", f"/v1/jobs/{job.id}", secret)[0] == 200
                results["web"] = run_web(port, web_pids, job.id, secret, args)
        finally:
            stop(web)
            try:
                broker.flush_all()
            except Exception:  # the broker went away (restarted by someone else)
                print("could not flush the broker's queues", file=sys.stderr)
            from django.db import connections

            connections.close_all()
            drop_database(DB_NAME)
    text = report(results, args)
    name = "scale" if set(args.only) == {"sleep", "dsp", "web"} else "scale-" + "-".join(args.only)
    (RESULTS / f"{name}.md").write_text(text)
    plot(results, args, RESULTS / f"{name}.png")
    print(text)
    print(f"written: {RESULTS / name}.md and .png")


if __name__ == "__main__":
    main()
