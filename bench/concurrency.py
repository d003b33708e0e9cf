"""Concurrent creations and polls against `manage.py serve`: server errors and the ledger.

Not a test (tests/jobs/test_concurrency.py runs one round of it). Each round starts a fresh
server on a fresh database: the embedded default (SQLite in a temporary folder) or, with
--postgres URL, that PostgreSQL database (dropped and re-created: give it a name of its own).
It then fires --requests calls at the same instant (7 in 10 live creations spread over the
accounts' keys, the rest polls and lists) and prints, per round, the status counts, the
answers >= 500 and connection resets, the lowest running balance of any account and the
accepted jobs that are not paid for exactly once.

    python -m bench.concurrency                       # embedded, 5 rounds of 100
    python -m bench.concurrency --postgres postgres://postgres@127.0.0.1:5432/btro_bench
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import burst  # noqa: E402


def recreate(url: str) -> None:
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(url.replace(parts.path, "/postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def round_(args: argparse.Namespace, folder: Path) -> dict:
    extra = {"BTRO_FREE_CREDITS": str(args.credits)}
    if args.postgres:
        recreate(args.postgres)
        extra["DATABASE_URL"] = args.postgres
    env = burst.server_env(folder / "var", **extra)
    burst.manage("migrate", "--noinput", env=env)
    emails = burst.emails(args.accounts)
    accounts = burst.accounts_create(env, emails, args.keys)
    with burst.serving(env, folder / "serve.log") as port:
        result = burst.burst(port, accounts, burst.short_wav(), total=args.requests)
    after = burst.ledger(env, emails)
    return {
        "statuses": dict(sorted(result.statuses.items())),
        "5xx": sum(status >= 500 for status, _ in result.errors),
        "resets": sum(status == 0 for status, _ in result.errors),
        "first_error": result.errors[0][1] if result.errors else None,
        "lowest_balance": min(a["lowest"] for a in after["accounts"].values()),
        "unpaid": len(burst.unpaid(result, after)),
        "seconds": round(result.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--keys", type=int, default=2, help="live keys per account")
    parser.add_argument("--credits", type=int, default=30, help="each account's balance")
    parser.add_argument("--postgres", default="", help="a database URL to drop and re-create")
    args = parser.parse_args()
    rounds = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(round_(args, Path(folder)))
        print(f"round {i + 1}: {rounds[-1]}", flush=True)

    def spread(name: str) -> str:
        values = [r[name] for r in rounds]
        return f"{statistics.mean(values):.1f} (min {min(values)}, max {max(values)})"

    print(
        f"{'postgres' if args.postgres else 'embedded'}: {args.requests} concurrent requests, "
        f"{args.rounds} rounds: per round 5xx {spread('5xx')}, connection resets "
        f"{spread('resets')}; lowest balance "
        f"{min(r['lowest_balance'] for r in rounds)}; unpaid jobs "
        f"{sum(r['unpaid'] for r in rounds)}; burst seconds "
        f"{statistics.mean(r['seconds'] for r in rounds):.1f}"
    )


if __name__ == "__main__":
    main()
