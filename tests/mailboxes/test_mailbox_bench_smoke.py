"""benchmarks/mailbox_bench.py still runs and prints its figures, with --postgres the
PostgreSQL ones beside SQLite's (here, not in tests/test_benchmarks_smoke.py: it needs the
PostgreSQL server fixture)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "mailbox_bench.py"


@pytest.mark.slow
def test_mailbox_bench_on_postgresql_runs(postgres_server: str, tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, str(BENCH), "--series", "1000", "--postgres", postgres_server],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = bench.communicate(timeout=300)
    assert bench.returncode == 0, stdout + stderr
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
    with psycopg.connect(postgres_server, dbname="postgres") as admin:
        name = f"warmup_day_bench_1000_{bench.pid}"
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (name, f"{name}_real")
        ).fetchall()
    assert left == []
