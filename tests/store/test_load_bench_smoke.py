"""benchmarks/store_load_bench.py still runs and prints its figures (here, not in
tests/test_benchmarks_smoke.py: it needs the PostgreSQL server fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "store_load_bench.py"


def test_store_load_bench_runs(postgres_server: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "2000", "--server", postgres_server],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in (
        "sqlite executemany (anchor)",
        "postgresql COPY",
        "postgresql executemany",
        "store copy sqlite -> postgresql",
        "× the anchor's",
    ):
        assert line in done.stdout
