"""SIGKILL a real `warmup run` at random points, run it again: same outbox, no duplicates."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.storefill import fill_store, table, write_plan

NOW = "2026-12-01T23:00"


def warmup_run(plan: Path, store: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WARMUP_STORE": str(store)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warmup",
            "run",
            str(plan),
            "--day",
            "1",
            "--now",
            NOW,
            "--no-dispatch",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def final_state(store: Path) -> list[object]:
    return [
        table(
            store,
            "SELECT key, kind, node_id, customer_id, payload, status, not_before, "
            "after_key FROM outbox ORDER BY key",
        ),
        table(store, "SELECT * FROM allocations ORDER BY customer_id"),
        table(
            store,
            "SELECT customer_id, path, node, due_at, outcome, rank, last_label "
            "FROM journeys ORDER BY customer_id",
        ),
        table(
            store, "SELECT day, date, status, new_limit, new_allocated, klaviyo_allocated FROM days"
        ),
    ]


@pytest.mark.slow
def test_killed_runs_complete_with_no_duplicate_and_no_gap(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    fill_store(base, 20_000, seed=7)
    plan = write_plan(tmp_path, variant=1, days=["all", "all"])
    reference, crashed = tmp_path / "reference.db", tmp_path / "crashed.db"
    shutil.copy(base, reference)
    shutil.copy(base, crashed)
    started = time.perf_counter()
    proc = warmup_run(plan, reference)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    duration = time.perf_counter() - started
    expected = final_state(reference)
    assert len(expected[0]) > 10_000  # webhook + email rows: kills land amid real work

    rng = random.Random(20261201)
    for _ in range(4):
        victim = warmup_run(plan, crashed)
        time.sleep(rng.uniform(0.2, 1.0) * duration)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    proc = warmup_run(plan, crashed)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    got = final_state(crashed)
    assert got[0] == expected[0]
    assert got == expected
    keys = [row[0] for row in got[0]]  # type: ignore[index]
    assert len(keys) == len(set(keys))
