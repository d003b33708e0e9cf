"""`btro`: separate a file, look at jobs and the balance, forward events to a local URL."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import httpx

from . import _core, webhooks
from ._sync import Client, Job
from .errors import APIError, BtroError


class Progress:
    """One line redrawn in place on a terminal; a plain line per step (and per 25 %) when piped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last: tuple[str, int] | None = None

    def update(self, label: str, done: int, total: int | None) -> None:
        percent = int(100 * done / total) if total else 0
        if self.tty:
            bar = "#" * (percent // 4)
            self.stream.write(f"\r{label:<24} [{bar:<25}] {percent:3d}%")
            self.stream.flush()
            return
        step = percent // 25 * 25
        if self.last != (label, step):
            self.last = (label, step)
            print(f"{label}: {step}%", file=self.stream, flush=True)

    def done(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        print(line, file=self.stream, flush=True)
        self.last = None


def separate(client: Client, args: argparse.Namespace) -> int:
    progress = Progress(sys.stderr)
    job = client.jobs.create(
        args.file,
        tier=args.tier,
        format=args.format,
        on_upload_progress=lambda done, total: progress.update("uploading", done, total),
    )
    progress.done(f"uploaded {args.file}: job {job.id} {job.status}")

    def on_job(job: Job) -> None:
        progress.update(f"separating ({job.status})", job.get("progress") or 0, 100)

    job.wait(timeout=args.timeout, on_progress=on_job)
    progress.done(f"job {job.id} {job.status}")
    files = job.download(
        args.out, on_progress=lambda stem, done, total: progress.update(stem, done, total)
    )
    progress.done(f"downloaded {len(files)} stems to {args.out}")
    for path in files.values():
        print(path)
    return 0


def jobs(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        listed = client.jobs.list(status=args.status, tier=args.tier, limit=min(args.limit, 100))
        for count, job in enumerate(listed):
            if count >= args.limit:
                break
            if args.json:
                print(json.dumps(job))
            else:
                print(f"{job.id}\t{job.status}\t{job.tier}\t{job.progress}%\t{job.filename}")
        return 0
    if not args.id:
        raise SystemExit(f"btro jobs {args.action}: give a job id")
    action = {
        "get": client.jobs.retrieve,
        "cancel": client.jobs.cancel,
        "delete": client.jobs.delete,
    }[args.action]
    print(json.dumps(action(args.id), indent=2))
    return 0


def balance(client: Client, args: argparse.Namespace) -> int:
    answer = client.balance()
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(f"{answer['available']} credits available")
        for tier, price in answer["prices"].items():
            print(f"  {tier}: {price} {answer['unit']}")
    return 0


def listen(client: Client, args: argparse.Namespace) -> int:
    """Poll /v1/events for new events and POST each, signed, to --forward-to."""
    secret = args.secret or f"whsec_{secrets.token_hex(24)}"
    seen = {event["id"] for event in _newest_events(client, args.events)}
    print(f"Ready! Your webhook signing secret is {secret} (^C to quit)", flush=True)
    forwarded = 0
    with httpx.Client(timeout=30) as http:
        while args.max_events is None or forwarded < args.max_events:
            fresh = [e for e in _newest_events(client, args.events) if e["id"] not in seen]
            for event in reversed(fresh):  # oldest first
                seen.add(event["id"])
                body = json.dumps(event).encode()
                headers = {
                    "Content-Type": "application/json",
                    webhooks.HEADER: webhooks.sign(body, secret),
                    "User-Agent": _core.USER_AGENT,
                }
                print(f"--> {event.get('type')} [{event['id']}]", flush=True)
                try:
                    answer = http.post(args.forward_to, content=body, headers=headers)
                    print(f"<-- [{answer.status_code}] POST {args.forward_to}", flush=True)
                except httpx.HTTPError as exc:
                    print(f"<-- failed: POST {args.forward_to}: {exc}", flush=True)
                forwarded += 1
                if args.max_events is not None and forwarded >= args.max_events:
                    return 0
            time.sleep(args.interval)
    return 0


def _newest_events(client: Client, types: str | None) -> list[Any]:
    """The newest page of events, newest first (one request: the API's read limit is ample)."""
    page = client.object(
        _core.Request("GET", "/v1/events", params=_core.list_params(limit=100, type=types))
    )
    return list(page["data"])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="btro", description="The BTRO audio-separation API.")
    top.add_argument("--api-key", help="default: $BTRO_API_KEY")
    top.add_argument("--base-url", help=f"default: $BTRO_BASE_URL or {_core.DEFAULT_BASE_URL}")
    commands = top.add_subparsers(dest="command", required=True)

    sep = commands.add_parser("separate", help="upload a file, wait, download its stems")
    sep.add_argument("file")
    sep.add_argument("--tier", default="pro", choices=["basic", "pro", "studio", "vocal_remover"])
    sep.add_argument("--format", choices=["wav", "flac", "mp3"])
    sep.add_argument("--out", default="stems", help="folder for <stem>.<ext> (default: stems)")
    sep.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the job")
    sep.set_defaults(run=separate)

    job = commands.add_parser("jobs", help="list, get, cancel or delete jobs")
    job.add_argument("action", choices=["list", "get", "cancel", "delete"])
    job.add_argument("id", nargs="?")
    job.add_argument("--status")
    job.add_argument("--tier")
    job.add_argument("--limit", type=int, default=10, help="how many jobs to list")
    job.add_argument("--json", action="store_true", help="one JSON object per line")
    job.set_defaults(run=jobs)

    bal = commands.add_parser("balance", help="credits available and the price of each tier")
    bal.add_argument("--json", action="store_true")
    bal.set_defaults(run=balance)

    lis = commands.add_parser("listen", help="forward new events, signed, to a local URL")
    lis.add_argument("--forward-to", required=True, metavar="URL")
    lis.add_argument("--events", help="only this event type (e.g. job.succeeded)")
    lis.add_argument("--secret", help="sign with this secret instead of a new one")
    lis.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    lis.add_argument("--max-events", type=int, help="exit after forwarding this many")
    lis.set_defaults(run=listen)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(api_key=args.api_key, base_url=args.base_url) as client:
            code: int = args.run(client, args)
            return code
    except APIError as exc:
        print(f"\nError: {exc.message}", file=sys.stderr)
        print(
            f"  {exc.status} {exc.type} ({exc.code}); request id: {exc.request_id}", file=sys.stderr
        )
        return 1
    except BtroError as exc:
        print(f"\nError: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
