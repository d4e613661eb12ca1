"""Import speed: warmup's validated, normalised upsert against a plain csv → executemany loader.

    python benchmarks/import_bench.py [--rows 1000000] [--keep DIR]

Each measured step runs in its own subprocess so that its peak memory (VmHWM) is its own.
The sample export is deterministic: a work folder kept with --keep reuses it at the same size.
Prints one line per step (CPU time — the main figure on a shared machine —, wall time, peak
memory, file size) and the ratios to both plain loaders (the anchors, run in the same
invocation).
"""

from __future__ import annotations

import argparse
import json
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
from warmup.importer import import_csv
from warmup.plan import load_plan
loaded = load_plan(sys.argv[3])
start = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
report = import_csv(loaded, sys.argv[1])
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed, "cpu": usage.ru_utime + usage.ru_stime - cpu,
                  "rows_loaded": report.rows_loaded,
                  "rejected": report.rows_rejected, "new": report.customers_new,
                  "updated": report.customers_updated,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="warmup-import-bench-"))
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
    results = {}
    for name, code, extra in [
        ("plain csv → executemany", PLAIN, ["0"]),
        ("plain, email primary key", PLAIN, ["1"]),
        ("warmup import (new store)", WARMUP, [plan]),
        ("warmup import (re-import, upsert)", WARMUP, [plan]),
    ]:
        db = work / ("plain.db" if "plain" in name else "warmup.db")
        if "re-import" not in name:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        result = run(code, str(csv_path), str(db), *extra)
        results[name] = result
        # the file size once the WAL is checkpointed into it: what the store takes on disk
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        result["store_mb"] = size / 1e6
        print(
            f"{name:36s} CPU {result['cpu']:7.2f} s  wall {result['seconds']:7.2f} s  "
            f"{args.rows / result['cpu']:>10,.0f} rows per CPU s  "
            f"peak {result['peak_mb']:6.0f} MB  "
            f"file {result['store_mb']:6.0f} MB"
            + (
                f"  ({result['new']:,.0f} new, {result['updated']:,.0f} updated, "
                f"{result['rejected']:,.0f} rejected)"
                if "new" in result
                else ""
            )
        )
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


if __name__ == "__main__":
    main()
