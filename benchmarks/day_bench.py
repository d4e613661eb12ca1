"""Dry-run speed of the scenario engine: day 14 of the example plan over N customers.

    python benchmarks/day_bench.py [--customers 1000000] [--series 100000,300000,1000000]
                                   [--keep DIR]

The store is generated directly (executemany for customers, INSERT…SELECT for the synthesised
allocations of days 1–13, so #40's past audience matters), then the dry run runs in its own
subprocess so that its wall time and peak memory (ru_maxrss) are its own. Prints one line per
size, and with several sizes the time per customer, to show how time grows.
"""

from __future__ import annotations

import argparse
import json
import random
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

CHILD = r"""
import json, os, resource, sys, time
os.environ["WARMUP_STORE"] = sys.argv[2]
from warmup.engine import run_day
from warmup.plan import load_plan
loaded = load_plan(sys.argv[1])
start = time.perf_counter()
result = run_day(loaded, 14, dry_run=True)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  / 1024, "new": result.allocation["new"] if result.allocation else None}))
"""


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


def measure(store: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(PLAN), str(store)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


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
    args = parser.parse_args()
    sizes = [int(s) for s in args.series.split(",")] if args.series else [args.customers]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="day-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        store = folder / f"bench-{n}.db"
        if not store.exists():
            started = time.perf_counter()
            build_store(store, n)
            print(f"built {n:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
        figures = measure(store)
        rows.append((n, figures))
        print(
            f"dry run day 14, {n:>9,} customers: wall {figures['wall']:6.2f} s, peak RSS "
            f"{figures['rss_mb']:6.0f} MB, new provider {figures['new']:,}",
            flush=True,
        )
    if len(rows) > 1:
        first_n, first = rows[0]
        for n, figures in rows:
            print(
                f"  {n:>9,}: {figures['wall'] / n * 1e6:6.2f} µs per customer, "
                f"{figures['wall'] / first['wall']:5.2f}× the time for "
                f"{n / first_n:5.1f}× the customers"
            )


if __name__ == "__main__":
    main()
