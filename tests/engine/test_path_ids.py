"""A journey names its path by id (migration 040); a day frozen before that, whose journeys hold
their node lists, carries on as if it had been written by the engine of today."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.storefill import at, fill_store, table
from warmup.engine import explain, run_day
from warmup.plan import LoadedPlan

OUTBOX = "SELECT key, payload, after_key, not_before FROM outbox_rows ORDER BY key"


@pytest.fixture
def plan1_store(store_path: Path) -> str:
    """SQLite only: old stores are SQLite files, and this test copies the file."""
    fill_store(store_path, 400, seed=1)
    return str(store_path)


def as_before_path_ids(store: Path) -> None:
    """Rewrite the frozen journeys the way the engine wrote them before migration 040."""
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "UPDATE journeys SET path = (SELECT p.path FROM journey_paths p WHERE p.day = "
            "journeys.day AND p.id = journeys.path_id), last_label = (SELECT p.last_label FROM "
            "journey_paths p WHERE p.day = journeys.day AND p.id = journeys.path_id), "
            "path_id = NULL"
        )
        conn.execute("DELETE FROM journey_paths")
    conn.close()


def test_a_day_frozen_with_node_lists_resumes_alike(
    plan1: LoadedPlan, store_path: Path, tmp_path: Path
) -> None:
    # 00:05: allocated and frozen; the emails wait for the send time.
    assert run_day(plan1, 1, now=at("00:05")).status == "waiting"
    assert table(store_path, "SELECT count(*) FROM journeys WHERE path_id IS NULL") == [(0,)]
    old = tmp_path / "old.db"
    shutil.copy(store_path, old)
    as_before_path_ids(old)
    rows = (
        "SELECT day, customer_id, path, node, due_at, outcome, rank, last_label FROM journey_rows"
    )
    assert table(old, rows + " ORDER BY customer_id") == table(
        store_path, rows + " ORDER BY customer_id"
    )

    done = run_day(plan1, 1, now=at("10:05"))
    email = str(table(store_path, "SELECT email FROM customers ORDER BY id LIMIT 1")[0][0])
    new_way = (
        table(store_path, OUTBOX),
        table(store_path, rows + " ORDER BY customer_id"),
        [n.entered for n in done.funnel],
        explain(plan1, 1, email).lines,
    )
    shutil.copy(old, store_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    again = run_day(plan1, 1, now=at("10:05"))
    assert again.status == done.status == "completed"
    old_way = (
        table(store_path, OUTBOX),
        table(store_path, rows + " ORDER BY customer_id"),
        [n.entered for n in again.funnel],
        explain(plan1, 1, email).lines,
    )
    assert old_way == new_way
    assert len(new_way[0]) >= 10 and any(r[1] == '{"template":"day-01"}' for r in new_way[0])
