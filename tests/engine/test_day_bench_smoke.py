"""benchmarks/day_bench.py --postgres still runs and prints the PostgreSQL figures beside
SQLite's (here, not in tests/test_benchmarks_smoke.py: it needs the PostgreSQL server fixture)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.pgbench import bench_databases_left, run_bench


@pytest.mark.slow
def test_day_bench_on_postgresql_runs(postgres_server: str, tmp_path: Path) -> None:
    stdout, pid = run_bench("day_bench.py", ["--customers", "1000"], postgres_server, tmp_path)
    for line in (
        "copied 1,000 customers to PostgreSQL",
        "pg dry run",
        "pg real (no dispatch)",
        "× SQLite's CPU",
    ):
        assert line in stdout, stdout
    # both engines allocate the same number of customers to the new provider
    news = {
        found.group(1).strip(): found.group(2)
        for found in re.finditer(r"customers, ([a-z() ]+?)\s*: .*new provider ([\d,]+)", stdout)
    }
    assert (
        news["pg dry run"] == news["dry run"] and news["pg real (no dispatch)"] == news["dry run"]
    )
    assert bench_databases_left(postgres_server, f"warmup_day_bench_1000_{pid}") == []
