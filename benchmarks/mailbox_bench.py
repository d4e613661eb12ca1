"""What per-mailbox-provider groups add to a day: day 14 of the example plan with and without
``schedule.mailbox_caps``, over the same store, each step in its own subprocess.

    python benchmarks/mailbox_bench.py [--series 100000,1000000] [--keep DIR] [--repeat 1]
                                       [--postgres "host=127.0.0.1 port=5432 user=postgres"]

The store is day_bench's (N customers, days 1–13 done) with addresses spread like a consumer
list: 30% gmail.com, 20% outlook/hotmail, 10% yahoo, 5% icloud, 35% at 5,000 company domains
(MX hosts at Google, Microsoft or their own) whose MX answers are already cached and whose
customers the MX step has already seen and whose groups are stored, as from day 2 on: no DNS,
no domain scan and no group decisions in the timed part (deciding every customer's group, the
first run's one-time step, is timed on its own). Steps: day_bench's anchor (the allocation as
one SQL statement), then the dry run and the real run (no dispatch, on a fresh copy) without
groups and with gmail capped at 40% and microsoft at a ramp. The figure is the groups'
overhead: (with − without) / without, of CPU (main) and wall time, for the whole run and for
the day's work without the imports.

With ``--postgres`` (libpq conninfo of a server on this machine) the store, groups decided, is
copied into a throw-away PostgreSQL database (day_bench's way; dropped at the end) and both
variants' dry run and real run go there too, in the same invocation: warmup's CPU plus the
server backend's, the groups' overhead there, and the ratio to SQLite's CPU with groups.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from day_bench import (
    ANCHOR,
    ENGINE,
    PLAN,
    PRELUDE,
    STAMP,
    Postgres,
    build_store,
    child,
    load_postgres,
)

REPO = Path(__file__).resolve().parent.parent
COMPANIES = 5000
CAPS = (
    "  mailbox_caps:\n"
    '    gmail: "40%"\n'
    # day 14's microsoft cap is above its share, so both variants send about as much and the
    # difference is the groups' own work (gmail's 40% still binds: the window pass runs)
    "    microsoft: [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, "
    '"35%"]\n'
)

# Each customer's group decided and stored (warmup.mailboxes.assign), as the first run with
# groups does once; later runs decide only new customers' groups.
ASSIGN = (
    PRELUDE
    + r"""
start = clock()
from warmup.mailboxes.cache import refresh_mx
from warmup.plan import load_plan
from warmup.store import open_store
loaded = load_plan(sys.argv[1])
store = open_store(sys.argv[2], create=False)
with store.backend.transaction():
    refresh_mx(loaded.plan, store.backend)
store.close()
finish(*start)
"""
)


def plans(folder: Path) -> dict[str, Path]:
    """The example plan as is, and with mailbox caps (absolute scenario/templates paths)."""
    text = PLAN.read_text(encoding="utf-8")
    text = text.replace("../scenarios/", f"{REPO}/scenarios/")
    text = text.replace("templates: ../templates", f"templates: {REPO / 'templates'}")
    plain = folder / "plain.yaml"
    plain.write_text(text, encoding="utf-8")
    grouped = folder / "groups.yaml"
    grouped.write_text(text.replace("\nguardrails:", CAPS + "\nguardrails:", 1), encoding="utf-8")
    return {"without groups": plain, "with groups": grouped}


def spread_domains(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        "UPDATE customers SET email = 'customer' || id || '@' || CASE "
        "WHEN id % 20 < 6 THEN 'gmail.com' WHEN id % 20 < 8 THEN 'outlook.com' "
        "WHEN id % 20 < 10 THEN 'hotmail.com' WHEN id % 20 < 12 THEN 'yahoo.com' "
        "WHEN id % 20 < 13 THEN 'icloud.com' "
        f"ELSE 'co' || (id % {COMPANIES}) || '.example' END"
    )
    mx = ["aspmx.l.google.com", "co.mail.protection.outlook.com", "mx.own.example"]
    conn.executemany(
        "INSERT OR REPLACE INTO mailbox_domains (domain, status, mx, resolved_at) "
        "VALUES (?, 'ok', ?, ?)",
        [(f"co{i}.example", mx[i % 3], STAMP) for i in range(COMPANIES)],
    )
    # the state from day 2 on: every customer's domain already seen by the MX step
    conn.execute("INSERT INTO mailbox_scans (id, customer_id) SELECT 1, max(id) FROM customers")
    conn.execute("COMMIT")
    conn.close()


def measure(store: Path, plan: Path, n: int, repeat: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        runs = {
            "anchor": child(ANCHOR, str(plan), str(store), str(n)),
            "dry run": child(ENGINE, str(plan), str(store), "dry"),
        }
        copy = store.with_name(store.stem + "-real.db")
        for suffix in ("-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copy(store, copy)
        runs["real"] = child(ENGINE, str(plan), str(copy), "real")
        for name, run in runs.items():
            if name not in figures or run["cpu"] < figures[name]["cpu"]:
                figures[name] = run
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=str, default="100000")
    parser.add_argument("--keep", type=Path, default=None, help="keep stores in this folder")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per step")
    parser.add_argument(
        "--postgres",
        default=None,
        help="libpq conninfo of a PostgreSQL server on this machine: run both variants there too",
    )
    args = parser.parse_args()
    pg = Postgres(args.postgres) if args.postgres else None
    try:
        _run(args, pg)
    finally:
        if pg is not None:
            pg.drop_all()


def measure_postgres(
    pg: Postgres, url: str, variants: dict[str, Path], repeat: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Each variant's dry run and real run (on a fresh copy) on PostgreSQL, best of ``repeat``
    by warmup's and the server's CPU together."""
    source = url.rsplit("/", 1)[1]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, plan in variants.items():
        figures: dict[str, dict[str, float]] = {}
        for _ in range(repeat):
            runs = {"dry run": child(ENGINE, str(plan), url, "dry")}
            real = pg.create(f"{source}_real", template=source)
            runs["real"] = child(ENGINE, str(plan), real, "real")
            for step, run in runs.items():
                run["both"] = run["cpu"] + run["server_cpu"]
                if step not in figures or run["both"] < figures[step]["both"]:
                    figures[step] = run
        results[name] = figures
    return results


def _run(args: argparse.Namespace, pg: Postgres | None) -> None:
    folder = args.keep or Path(tempfile.mkdtemp(prefix="mailbox-bench-"))
    if not args.keep:
        atexit.register(shutil.rmtree, folder, True)  # a temporary folder goes with the run
    folder.mkdir(parents=True, exist_ok=True)
    variants = plans(folder)
    for n in (int(s) for s in args.series.split(",")):
        store = folder / f"mailbox-{n}.db"
        if not store.exists():
            started = time.perf_counter()
            build_store(store, n)
            spread_domains(store)
            print(f"built {n:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
            first = child(ASSIGN, str(variants["with groups"]), str(store))
            print(
                f"{n:>9,} customers: every customer's group decided (the first run's one-time "
                f"step): CPU {first['cpu']:.2f} s, wall {first['wall']:.2f} s",
                flush=True,
            )
        results = {name: measure(store, plan, n, args.repeat) for name, plan in variants.items()}
        anchor = min(r["anchor"]["cpu"] for r in results.values())
        for name, figures in results.items():
            for step in ("dry run", "real"):
                f = figures[step]
                print(
                    f"{n:>9,} customers, {name:15s} {step:8s}: CPU {f['cpu']:6.2f} s "
                    f"(day's work {f['cpu'] - f['startup_cpu']:6.2f} s), wall {f['wall']:6.2f} s, "
                    f"peak RSS {f['rss_mb']:5.0f} MB, new {f['new'] or 0:,.0f}, "
                    f"{f['cpu'] / anchor:4.2f}× the anchor's CPU",
                    flush=True,
                )
        plain, grouped = results["without groups"], results["with groups"]
        for step in ("dry run", "real"):
            a, b = plain[step], grouped[step]
            work_a, work_b = a["cpu"] - a["startup_cpu"], b["cpu"] - b["startup_cpu"]
            print(
                f"{n:>9,} customers, {step:8s}: groups add {(b['cpu'] / a['cpu'] - 1):+.1%} CPU "
                f"({(work_b / work_a - 1):+.1%} of the day's work without imports), "
                f"{(b['wall'] / a['wall'] - 1):+.1%} wall",
                flush=True,
            )
        if pg is None:
            continue
        on_pg = measure_postgres(pg, load_postgres(pg, store, n), variants, args.repeat)
        for name, figures in on_pg.items():
            for step in ("dry run", "real"):
                f, sqlite = figures[step], results[name][step]
                print(
                    f"{n:>9,} customers, pg {name:15s} {step:8s}: CPU {f['cpu']:6.2f} s + server "
                    f"{f['server_cpu']:6.2f} s = {f['both']:6.2f} s, wall {f['wall']:6.2f} s, "
                    f"new {f['new'] or 0:,.0f}, {f['both'] / sqlite['cpu']:4.2f}× SQLite's CPU, "
                    f"{f['wall'] / sqlite['wall']:4.2f}× its wall",
                    flush=True,
                )
        for step in ("dry run", "real"):
            a, b = on_pg["without groups"][step], on_pg["with groups"][step]
            print(
                f"{n:>9,} customers, pg {step:8s}: groups add {(b['both'] / a['both'] - 1):+.1%} "
                f"CPU (warmup + server), {(b['wall'] / a['wall'] - 1):+.1%} wall",
                flush=True,
            )


if __name__ == "__main__":
    main()
