"""Every benchmark script still runs and prints its figures, at a smoke size.

Speed itself is measured by running the scripts at full size (README, "Benchmarks"); these
tests assert behaviour only: exit code 0 and the figures' lines present.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

CASES = {
    "day_bench.py": (
        ["--customers", "2000"],
        ["anchor", "dry run", "real (no dispatch)", "× the dry run's CPU", "peak RSS"],
    ),
    "fortnight_bench.py": (
        ["--customers", "300", "--days", "2"],
        ["day  2:", "engine CPU", "klaviyo CPU", "email CPU", "peak RSS", "all days:"],
    ),
    "import_bench.py": (
        ["--rows", "2000"],
        ["plain csv", "warmup import", "CPU", "× plain", "the plain table's file"],
    ),
    "send_bench.py": (
        ["--messages", "300"],
        ["throughput", "s CPU", "anchor", "peak RSS", "render + build"],
    ),
    "klaviyo_sync_bench.py": (
        ["--size", "1000", "--fast"],
        ["import 1000 new profiles", "read the list back (500)"],
    ),
    "readback_bench.py": (
        ["--recipients", "500", "--fast"],
        ["read-back: 5 requests for a floor of 5", "0 x 429", "day wall time", "anchor"],
    ),
    "api_send_bench.py": (
        ["--provider", "ses", "--messages", "60", "--anchor-requests", "5"],
        ["requests            60 (floor 60", "throughput", "peak RSS", "CPU time", "anchor"],
    ),
    "engagement_pull_bench.py": (
        ["--customers", "300", "--events", "900", "--fast"],
        ["full pull: 900 events read", "incremental pull: ", "x 429", "store +"],
    ),
    "startup_bench.py": (
        ["--repeat", "1"],
        ["anchor: bare click --help", "warmup validate", "× the anchor's CPU"],
    ),
    "unsubscribe_latency_bench.py": (
        ["--customers", "200", "--one-by-one", "3", "--burst", "10"],
        ["one at a time (3): median", "burst of 10"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_at_smoke_size(script: str, tmp_path: Path) -> None:
    args, expected = CASES[script]
    temporary = tmp_path / "tmp"  # the script's temporary folder: empty again when it ends
    temporary.mkdir()
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temporary)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout}"
    assert list(temporary.iterdir()) == []


# Smoke cases that need a fixture of their own package's tests (the PostgreSQL server).
ELSEWHERE = {
    "store_load_bench.py": "tests/store/test_load_bench_smoke.py",
    "worker_bench.py": "tests/store/test_worker_bench_smoke.py",
    "mailbox_bench.py": "tests/mailboxes/test_mailbox_bench_smoke.py",
}


def test_every_benchmark_has_a_smoke_case() -> None:
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted([*CASES, *ELSEWHERE])
    assert all((BENCHMARKS.parent / test).is_file() for test in ELSEWHERE.values())


SENDGRID_SMOKE = ("--provider", "sendgrid", "--messages", "1500", "--anchor-requests", "1")


@pytest.mark.slow
def test_the_sendgrid_api_benchmark_runs_at_smoke_size(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "api_send_bench.py"), *SENDGRID_SMOKE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # 1,500 messages in batches of 1,000 personalizations: the floor of 2 requests. A worker
    # sends a part-filled batch when no more rows are due within 50 ms, which a loaded
    # machine can cause now and then; one request per message would be 1,500.
    found = re.search(r"requests +(\d+) \(floor 2 = messages / batch size 1000\)", result.stdout)
    assert found, result.stdout
    assert 2 <= int(found.group(1)) <= 4, result.stdout
