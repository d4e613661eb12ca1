"""benchmarks/import_bench.py's PostgreSQL mode still runs and prints its figures (here, not in
tests/test_benchmarks_smoke.py: it needs the PostgreSQL server fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "import_bench.py"


@pytest.mark.slow
def test_import_bench_runs_on_postgres(postgres_server: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "300", "--postgres", postgres_server],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "postgresql: plain COPY",
        "postgresql: warmup import (new store)",
        "+ server",
        "× SQLite's import",
        "× the plain COPY table",
    ):
        assert line in done.stdout, done.stdout
