"""Running a benchmark's PostgreSQL mode at smoke size, and checking it cleaned up after itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_bench(script: str, args: list[str], postgres_server: str, cwd: Path) -> tuple[str, int]:
    """(stdout, the bench's pid) of ``benchmarks/<script> ARGS --postgres SERVER``; fails the
    test when it does not exit 0."""
    bench = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / script), *args, "--postgres", postgres_server],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = bench.communicate(timeout=300)
    assert bench.returncode == 0, stdout + stderr
    return stdout, bench.pid


def bench_databases_left(postgres_server: str, name: str) -> list[str]:
    """The day benches' throw-away databases (``name`` and ``name``_real) still on the server."""
    with psycopg.connect(postgres_server, dbname="postgres") as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (name, f"{name}_real")
        ).fetchall()
    return [str(row[0]) for row in rows]
