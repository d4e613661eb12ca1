"""benchmarks/day_bench.py --postgres still runs and prints the PostgreSQL figures beside
SQLite's (here, not in tests/test_benchmarks_smoke.py: it needs the PostgreSQL server fixture)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "day_bench.py"


@pytest.mark.slow
def test_day_bench_on_postgresql_runs(postgres_server: str, tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, str(BENCH), "--customers", "1000", "--postgres", postgres_server],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = bench.communicate(timeout=300)
    done = subprocess.CompletedProcess(bench.args, bench.returncode, stdout, stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "copied 1,000 customers to PostgreSQL",
        "pg dry run",
        "pg real (no dispatch)",
        "× SQLite's CPU",
    ):
        assert line in done.stdout, done.stdout
    # both engines allocate the same number of customers to the new provider
    news = {
        found.group(1).strip(): found.group(2)
        for found in re.finditer(
            r"customers, ([a-z() ]+?)\s*: .*new provider ([\d,]+)", done.stdout
        )
    }
    assert (
        news["pg dry run"] == news["dry run"] and news["pg real (no dispatch)"] == news["dry run"]
    )
    # its databases are gone
    with psycopg.connect(postgres_server, dbname="postgres") as admin:
        name = f"warmup_day_bench_1000_{bench.pid}"
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (name, f"{name}_real")
        ).fetchall()
    assert left == []
