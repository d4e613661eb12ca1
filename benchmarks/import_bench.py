"""Import speed: warmup's validated, normalised upsert against a plain csv → executemany loader.

    python benchmarks/import_bench.py [--rows 1000000] [--keep DIR] [--repeat N]
        [--postgres "host=127.0.0.1 port=5432 user=postgres"]

Each measured step runs in its own subprocess so that its peak memory (VmHWM) is its own.
The sample export is deterministic: a work folder kept with --keep reuses it at the same size.
Prints one line per step (CPU time — the main figure on a shared machine —, wall time, peak
memory, file size) and the ratios to both plain loaders (the anchors, run in the same
invocation). With --repeat each step runs N times and its least CPU counts (the machine is
shared: the least is the one least disturbed).

With --postgres the same export is also imported into a PostgreSQL store (a database of its
own, created and dropped) and loaded by a plain ``COPY`` into one text table (PostgreSQL's
anchor). The work is split between this machine's client and the server's backend process:
both CPU times are shown, the backend's read from /proc when the server runs here.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PLAIN = r"""
import csv, json, resource, sqlite3, sys, time
csv_path, db_path, keyed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's memory at the fork
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
conn = sqlite3.connect(db_path, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
with open(csv_path, newline="", encoding="utf-8") as handle:
    reader = csv.reader(handle)
    header = next(reader)
    cols = ", ".join(f"c{i} TEXT" for i in range(len(header)))
    if keyed:
        cols = cols.replace("c0 TEXT", "c0 TEXT PRIMARY KEY")
    conn.execute(f"CREATE TABLE t ({cols})")
    marks = ", ".join("?" * len(header))
    verb = "INSERT OR REPLACE" if keyed else "INSERT"
    conn.execute("BEGIN")
    conn.executemany(f"{verb} INTO t VALUES ({marks})", reader)
    conn.execute("COMMIT")
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime - cpu,
                  "peak_mb": peak_mb()}))
"""

WARMUP = r"""
import json, os, resource, sys, time
os.environ["WARMUP_STORE"] = sys.argv[2]
def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's memory at the fork
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def backend_cpu(store):
    # the server backend's CPU seconds, when it runs on this machine (PostgreSQL only)
    if store.dialect != "postgresql":
        return 0.0
    pid = store.backend.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.store import open_store
loaded = load_plan(sys.argv[3])
store = open_store(sys.argv[2])
server = backend_cpu(store)
start = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
report = import_csv(loaded, sys.argv[1], store=store)
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime - cpu,
                  "server_cpu": backend_cpu(store) - server,
                  "rows_loaded": report.rows_loaded,
                  "rejected": report.rows_rejected, "new": report.customers_new,
                  "updated": report.customers_updated, "peak_mb": peak_mb()}))
"""

PLAIN_COPY = r"""
import json, os, resource, sys, time
import psycopg
csv_path, conninfo = sys.argv[1], sys.argv[2]
def backend_cpu(conn):
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
with psycopg.connect(conninfo, autocommit=True) as conn:
    server = backend_cpu(conn)
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    with open(csv_path, "rb") as handle:
        header = handle.readline().decode().rstrip("\n").split(",")
        cols = ", ".join(f"c{i} TEXT" for i in range(len(header)))
        with conn.transaction():
            conn.execute("DROP TABLE IF EXISTS t")
            conn.execute(f"CREATE TABLE t ({cols})")
            with conn.cursor().copy("COPY t FROM STDIN (FORMAT csv)") as copy:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    size = conn.execute("SELECT pg_total_relation_size('t')").fetchone()[0]
    print(json.dumps({"seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime - cpu,
                      "server_cpu": backend_cpu(conn) - server, "store_mb": size / 1e6,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def least_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run the shared machine disturbed least: the least CPU (client and server)."""
    return min(runs, key=lambda r: r["cpu"] + r.get("server_cpu", 0.0))


def sqlite_size_mb(db: Path) -> float:
    """The file's size once the WAL is checkpointed into it: what the store takes on disk."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size / 1e6


def fresh_sqlite(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def show(name: str, result: dict[str, float], rows: int) -> None:
    server = result.get("server_cpu") if name.startswith("postgresql") else None
    cpu = result["cpu"] + (server or 0.0)
    print(
        f"{name:40s} CPU {result['cpu']:7.2f} s"
        + (f" + server {server:6.2f} s" if server is not None else "")
        + f"  wall {result['seconds']:7.2f} s  {rows / cpu:>9,.0f} rows per CPU s  "
        f"peak {result['peak_mb']:5.0f} MB  store {result['store_mb']:6.0f} MB"
        + (
            f"  ({result['new']:,.0f} new, {result['updated']:,.0f} updated, "
            f"{result['rejected']:,.0f} rejected)"
            if "new" in result
            else ""
        )
    )


def total_cpu(result: dict[str, float]) -> float:
    return result["cpu"] + result.get("server_cpu", 0.0)


def postgres_steps(
    conninfo: str, csv_path: Path, plan: str, rows: int, repeat: int
) -> dict[str, dict[str, float]]:
    """warmup's import into a PostgreSQL store of its own, and the plain COPY anchor."""
    import psycopg

    name = f"warmup_import_bench_{os.getpid()}"
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = (
        f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', 5432)}/{name}"
    )
    database = psycopg.conninfo.make_conninfo(conninfo, dbname=name)
    results: dict[str, dict[str, float]] = {}
    try:
        runs = [run(PLAIN_COPY, str(csv_path), database) for _ in range(repeat)]
        results["postgresql: plain COPY"] = least_cpu(runs)
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE t")
        for step in ("new store", "re-import, upsert"):
            runs = []
            for n in range(repeat):
                if step == "new store" and n:
                    # each new-store run on a new database, as SQLite's on a new file; the
                    # re-imports then run on the last one's store
                    with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as admin:
                        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
                        admin.execute(f"CREATE DATABASE {name}")
                runs.append(run(WARMUP, str(csv_path), url, plan))
            result = least_cpu(runs)
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")  # the dead rows of the upserts are not the store
                size = conn.execute(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN "
                    "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                    "AND n.nspname = current_schema()"
                ).fetchone()[0]
                result["store_mb"] = float(size) / 1e6
            results[f"postgresql: warmup import ({step})"] = result
    finally:
        with psycopg.connect(conninfo, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    for key, result in results.items():
        show(key, result, rows)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; least CPU counts")
    parser.add_argument("--postgres", default=None, help="libpq conninfo of a server")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="warmup-import-bench-"))
    if not args.keep:
        atexit.register(shutil.rmtree, work, True)  # a temporary folder goes with the run
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from warmup.app.sample import write_sample_csv

    csv_path = work / "export.csv"
    # the sample is deterministic: a kept work folder reuses the export of the same size
    stamp = work / "export.rows"
    start = time.perf_counter()
    if csv_path.exists() and stamp.exists() and stamp.read_text() == str(args.rows):
        made = "reused"
    else:
        write_sample_csv(csv_path, args.rows)
        stamp.write_text(str(args.rows))
        made = "generated"
    size_mb = csv_path.stat().st_size / 1e6
    print(
        f"{made} {args.rows:,} rows, {size_mb:,.0f} MB, 32 columns "
        f"in {time.perf_counter() - start:.1f} s"
    )
    plan = str(REPO / "plans" / "example.yaml")
    results: dict[str, dict[str, float]] = {}
    for name, code, extra in [
        ("plain csv → executemany", PLAIN, ["0"]),
        ("plain, email primary key", PLAIN, ["1"]),
        ("warmup import (new store)", WARMUP, [plan]),
        ("warmup import (re-import, upsert)", WARMUP, [plan]),
    ]:
        db = work / ("plain.db" if "plain" in name else "warmup.db")
        runs = []
        # a new store's import is repeated on a new file each time; a re-import on the store
        for _ in range(args.repeat):
            if "re-import" not in name:
                fresh_sqlite(db)
            runs.append(run(code, str(csv_path), str(db), *extra))
        result = least_cpu(runs)
        result["store_mb"] = sqlite_size_mb(db)
        results[name] = result
        show(name, result, args.rows)
    plain = results["plain csv → executemany"]
    keyed = results["plain, email primary key"]
    for name in ("warmup import (new store)", "warmup import (re-import, upsert)"):
        cpu = results[name]["cpu"]
        print(
            f"{name}: CPU {cpu / plain['cpu']:.2f}× plain, {cpu / keyed['cpu']:.2f}× plain with "
            f"email key; wall {results[name]['seconds'] / plain['seconds']:.2f}× plain"
        )
    store = results["warmup import (new store)"]["store_mb"]
    print(f"store file {store / plain['store_mb']:.2f}× the plain table's file")
    if args.postgres:
        pg = postgres_steps(args.postgres, csv_path, plan, args.rows, args.repeat)
        anchor = pg["postgresql: plain COPY"]
        for step in ("new store", "re-import, upsert"):
            mine = pg[f"postgresql: warmup import ({step})"]
            sqlite_cpu = total_cpu(results[f"warmup import ({step})"])
            print(
                f"postgresql import ({step}): CPU client + server {total_cpu(mine):.2f} s = "
                f"{total_cpu(mine) / sqlite_cpu:.2f}× SQLite's import, "
                f"{total_cpu(mine) / total_cpu(anchor):.2f}× plain COPY; wall "
                f"{mine['seconds'] / results[f'warmup import ({step})']['seconds']:.2f}× SQLite's"
            )
        print(
            "postgresql store "
            f"{pg['postgresql: warmup import (new store)']['store_mb'] / anchor['store_mb']:.2f}"
            "× the plain COPY table"
        )


if __name__ == "__main__":
    main()
