"""Day 14 of the example plan over N customers: the dry run, the real allocation, an anchor.

    python benchmarks/day_bench.py [--customers 1000000] [--series 100000,300000,1000000]
                                   [--keep DIR] [--repeat 1]
                                   [--postgres "host=127.0.0.1 port=5432 user=postgres"]

The store is generated directly (executemany for customers, INSERT…SELECT for the synthesised
allocations of days 1–13, so #40's past audience matters). Three steps then run, each in its
own subprocess so that its CPU time, wall time and peak memory (VmHWM) are its own:

- anchor: the day's allocation as one SQL statement (consent, valid email, segment; earlier
  recipients first, then the most engaged) into a temp table — the floor of the work;
- dry run: ``warmup run --day 14 --dry-run`` (``run_day(dry_run=True)``);
- real: ``warmup run --day 14 --no-dispatch`` at 12:00 on the day (every wait is due), i.e.
  allocate, freeze journeys and allocations and write the whole outbox, on a fresh copy of the
  store each time.

CPU time (user + system of the step's process) is the main figure: on a shared machine wall
time mostly measures the neighbours. With several sizes, the time per customer shows growth.

With ``--postgres`` (libpq conninfo of a server on this machine) the same store is copied into a
throw-away PostgreSQL database (``warmup store copy``; dropped at the end) and the dry run and
the real allocation run on it too, in the same invocation: the engine's work there is split
between warmup's process and the server's backend, whose CPU is read from /proc as each
connection closes and shown apart (``server``); the real run gets a fresh copy each time
(``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "plans" / "example.yaml"
STAMP = "2026-11-20T00:00:00+00:00"

PRELUDE = r"""
import json, os, resource, sys, time
def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's memory at the fork
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def finish(start_wall, start_cpu, **extra):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - start_wall,
                      "cpu": usage.ru_utime + usage.ru_stime - start_cpu,
                      "rss_mb": peak_mb(), **extra}))
def clock():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime
"""

# Imports are inside the timed part: a user pays for them on every `warmup run`.
ENGINE = (
    PRELUDE
    + r"""
start = clock()
os.environ["WARMUP_STORE"] = sys.argv[2]
server = [0.0]
if sys.argv[2].startswith("postgresql:"):
    # the backend's CPU, read just before each of the run's connections closes
    from warmup.store.backends import postgresql as pg
    plain_close = pg.PostgresBackend.close
    def close(self):
        try:
            with open(f"/proc/{self.conn.info.backend_pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            server[0] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            server[0] = float("nan")  # a server on another machine
        plain_close(self)
    pg.PostgresBackend.close = close
from datetime import datetime, timezone
from warmup.engine import run_day
from warmup.plan import load_plan
loaded = load_plan(sys.argv[1])
startup = clock()
real = sys.argv[3] == "real"
now = datetime(2026, 12, 14, 11, 0, tzinfo=timezone.utc) if real else None
result = run_day(loaded, 14, dry_run=not real, now=now)
finish(*start, startup_cpu=startup[1] - start[1], server_cpu=server[0],
       new=result.allocation["new"] if result.allocation else None,
       outbox=sum(result.outbox.values()) if result.outbox else 0)
"""
)

ANCHOR = (
    PRELUDE
    + r"""
start = clock()
import sqlite3
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
limit = int(sys.argv[3])
conn.execute("BEGIN")
conn.execute(
    "CREATE TEMP TABLE anchor AS SELECT id, rank <= ? AS is_new FROM ("
    "SELECT c.id, ROW_NUMBER() OVER (ORDER BY p.customer_id IS NULL, "
    "c.last_engaged_at IS NULL, c.last_engaged_at DESC, c.email) AS rank "
    "FROM customers c JOIN segment_members s ON s.segment = 'engaged-90' "
    "AND s.customer_id = c.id LEFT JOIN consents e ON e.customer_id = c.id "
    "AND e.channel = 'email' LEFT JOIN allocations p ON p.day = 13 "
    "AND p.customer_id = c.id AND p.provider = 'new' "
    "WHERE c.email_valid = 1 AND coalesce(e.status, 'never_subscribed') "
    "NOT IN ('unsubscribed', 'suppressed'))",
    (limit,),
)
new = conn.execute("SELECT sum(is_new) FROM anchor").fetchone()[0]
conn.execute("ROLLBACK")
finish(*start, new=new)
"""
)


def _customers(n: int, seed: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    for i in range(1, n + 1):
        engaged = (
            None
            if rng.random() < 0.2
            else f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T10:00:00+00:00"
        )
        yield (
            i,
            f"customer{i}@example.com",
            int(rng.random() > 0.01),
            f"K{i:010d}",
            f"Name{i}",
            engaged,
            STAMP,
            STAMP,
        )


def build_store(path: Path, n: int, seed: int = 0) -> None:
    """N customers (5% unsubscribed, 1% invalid, 90% in the segment) and days 1–13 done."""
    # Creating the store through warmup gives the real schema and migrations.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from warmup.store import open_store; open_store(sys.argv[1]).close()",
            str(path),
        ],
        check=True,
    )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers (id, email, email_valid, klaviyo_id, first_name, "
        "last_engaged_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        _customers(n, seed),
    )
    conn.execute(
        "INSERT INTO consents SELECT id, 'email', CASE WHEN id % 20 = 0 THEN "
        f"'unsubscribed' ELSE 'subscribed' END, '{STAMP}', 'bench' FROM customers"
    )
    conn.execute(
        f"INSERT INTO segment_members SELECT 'engaged-90', id, '{STAMP}' FROM customers "
        "WHERE id % 10 <> 0"
    )
    # Earlier days: the new provider had a growing prefix of the eligible customers.
    eligible = int(n * 0.9 * 0.95)
    volumes = [50, 50, 100, 200, 400, 700, 1000] + [
        int(eligible * s) for s in (0.10, 0.15, 0.25, 0.35, 0.50, 0.75)
    ]
    for day, volume in enumerate(volumes, start=1):
        conn.execute(
            "INSERT INTO days (day, date, status, new_limit, new_allocated, "
            "klaviyo_allocated, started_at, completed_at) VALUES (?, ?, 'completed', "
            "?, ?, ?, ?, ?)",
            (day, f"2026-12-{day:02d}", volume, volume, eligible - volume, STAMP, STAMP),
        )
        conn.execute(
            "INSERT INTO allocations (day, customer_id, provider, tier) "
            "SELECT ?, id, 'new', 0 FROM customers WHERE id % 20 <> 0 AND "
            "id % 10 <> 0 AND email_valid = 1 ORDER BY id LIMIT ?",
            (day, volume),
        )
    conn.execute("COMMIT")
    conn.close()


def child(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Postgres:
    """Throw-away databases on a server: the bench store's copy and each real run's copy."""

    def __init__(self, server: str) -> None:
        import psycopg

        self.server = server
        self.names: list[str] = []
        self.admin = psycopg.connect(server, dbname="postgres", autocommit=True)
        self.params = psycopg.conninfo.conninfo_to_dict(server)

    def url(self, name: str) -> str:
        host, port = self.params.get("host", "127.0.0.1"), self.params.get("port", 5432)
        return f"postgresql://{self.params.get('user', 'postgres')}@{host}:{port}/{name}"

    def create(self, name: str, template: str | None = None) -> str:
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.execute(
            f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        )
        self.names.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        for name in reversed(self.names):
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.close()


def load_postgres(pg: Postgres, store: Path, n: int) -> str:
    """The SQLite bench store copied into a new database (``warmup store copy``), analysed."""
    import psycopg

    from warmup.store.copy import copy_store

    url = pg.create(f"warmup_day_bench_{n}_{os.getpid()}")
    started = time.perf_counter()
    copy_store(store, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"copied {n:,} customers to PostgreSQL in {time.perf_counter() - started:.1f} s")
    return url


def _best(figures: dict[str, dict[str, float]], runs: dict[str, dict[str, float]]) -> None:
    for name, run in runs.items():
        if name not in figures or run["cpu"] < figures[name]["cpu"]:
            figures[name] = run


def measure(
    store: Path, n: int, repeat: int, pg: Postgres | None = None, url: str | None = None
) -> dict[str, dict[str, float]]:
    """The best (least CPU) of ``repeat`` runs of each step."""
    figures: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        runs = {
            "anchor": child(ANCHOR, str(PLAN), str(store), str(n)),
            "dry run": child(ENGINE, str(PLAN), str(store), "dry"),
        }
        copy = store.with_name(store.stem + "-real.db")
        for suffix in ("-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copy(store, copy)
        runs["real (no dispatch)"] = child(ENGINE, str(PLAN), str(copy), "real")
        runs["real (no dispatch)"]["store_mb"] = (copy.stat().st_size - store.stat().st_size) / 1e6
        if pg is not None and url is not None:
            runs["pg dry run"] = child(ENGINE, str(PLAN), url, "dry")
            source = url.rsplit("/", 1)[1]
            real = pg.create(f"{source}_real", template=source)
            runs["pg real (no dispatch)"] = child(ENGINE, str(PLAN), real, "real")
            runs["pg real (no dispatch)"]["store_mb"] = 0.0
        _best(figures, runs)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--series",
        type=str,
        default=None,
        help="comma-separated sizes, e.g. 100000,1000000 (overrides --customers)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep stores in this folder")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per step")
    parser.add_argument(
        "--postgres",
        default=None,
        help="libpq conninfo of a PostgreSQL server on this machine: run the engine there too",
    )
    args = parser.parse_args()
    pg = Postgres(args.postgres) if args.postgres else None
    try:
        _run(args, pg)
    finally:
        if pg is not None:
            pg.drop_all()


def _run(args: argparse.Namespace, pg: Postgres | None) -> None:
    sizes = [int(s) for s in args.series.split(",")] if args.series else [args.customers]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="day-bench-"))
    if not args.keep:
        atexit.register(shutil.rmtree, folder, True)  # a temporary folder goes with the run
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        store = folder / f"bench-{n}.db"
        if not store.exists():
            started = time.perf_counter()
            build_store(store, n)
            print(f"built {n:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
        url = load_postgres(pg, store, n) if pg is not None else None
        figures = measure(store, n, args.repeat, pg, url)
        rows.append((n, figures))
        anchor = figures["anchor"]["cpu"]
        for name, f in figures.items():
            extra = ""
            if name != "anchor" and not name.startswith("pg "):
                extra = (
                    f" (of which imports and plan {f['startup_cpu']:4.2f} s), "
                    f"{f['cpu'] / anchor:4.2f}× the anchor's CPU, "
                    f"{(f['cpu'] - f['startup_cpu']) / anchor:4.2f}× without the imports"
                )
            if name.startswith("real"):
                extra += (
                    f", {f['cpu'] / figures['dry run']['cpu']:4.2f}× the dry run's CPU, "
                    f"{f['outbox']:,.0f} outbox rows, store +{f['store_mb']:,.0f} MB"
                )
            if name.startswith("pg "):
                both = f["cpu"] + f["server_cpu"]
                sqlite = figures[name[3:]]
                work = both - f["startup_cpu"]
                extra += (
                    f"; server {f['server_cpu']:5.2f} s, warmup + server {both:6.2f} CPU s = "
                    f"{both / sqlite['cpu']:4.2f}× SQLite's CPU "
                    f"({work / (sqlite['cpu'] - sqlite['startup_cpu']):4.2f}× without the "
                    f"imports), {f['wall'] / sqlite['wall']:4.2f}× its wall"
                )
            print(
                f"day 14, {n:>9,} customers, {name:18s}: CPU {f['cpu']:6.2f} s, wall "
                f"{f['wall']:6.2f} s, peak RSS {f['rss_mb']:5.0f} MB, new provider "
                f"{f['new'] or 0:,.0f}{extra}",
                flush=True,
            )
    if len(rows) > 1:
        first_n, first = rows[0]
        for n, figures in rows:
            for name in ("dry run", "real (no dispatch)"):
                cpu = figures[name]["cpu"]
                print(
                    f"  {n:>9,} {name:18s}: {cpu / n * 1e6:6.2f} µs CPU per customer, "
                    f"{cpu / first[name]['cpu']:5.2f}× the CPU for {n / first_n:5.1f}× the "
                    "customers"
                )


if __name__ == "__main__":
    main()
