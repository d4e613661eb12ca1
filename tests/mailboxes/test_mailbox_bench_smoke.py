"""benchmarks/mailbox_bench.py still runs and prints its figures, with --postgres the
PostgreSQL ones beside SQLite's (here, not in tests/test_benchmarks_smoke.py: it needs the
PostgreSQL server fixture)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.pgbench import bench_databases_left, run_bench


@pytest.mark.slow
def test_mailbox_bench_on_postgresql_runs(postgres_server: str, tmp_path: Path) -> None:
    stdout, pid = run_bench("mailbox_bench.py", ["--series", "1000"], postgres_server, tmp_path)
    for line in (
        "× the anchor's CPU",
        "real    : groups add",
        "copied 1,000 customers to PostgreSQL",
        "× SQLite's CPU",
        "pg dry run : groups add",
    ):
        assert line in stdout, stdout
    # each variant allocates as many customers to the new provider on both engines
    news = {
        (m.group(1) or "", m.group(2).strip(), m.group(3).strip()): m.group(4)
        for m in re.finditer(
            r"customers, (pg )?(with(?:out)? groups)\s+(dry run|real)\s*:.*?new ([\d,]+)", stdout
        )
    }
    assert len(news) == 8, stdout
    for (engine, variant, step), new in news.items():
        assert news[("", variant, step)] == new, (engine, variant, step)
    assert news[("", "with groups", "real")] != news[("", "without groups", "real")]
    assert bench_databases_left(postgres_server, f"warmup_day_bench_1000_{pid}") == []
