"""benchmarks/worker_bench.py still runs and prints its figures on both engines (here, not in
tests/test_benchmarks_smoke.py: it needs the PostgreSQL server fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "worker_bench.py"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_worker_bench_runs(engine: str, request: pytest.FixtureRequest) -> None:
    server = (
        ["--postgres", request.getfixturevalue("postgres_server")] if engine != "sqlite" else []
    )
    done = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "60", "--workers", "1,2", *server],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for line in (f"{engine}: 60 messages", "workers 1:", "workers 2:", "each recipient once"):
        assert line in done.stdout
