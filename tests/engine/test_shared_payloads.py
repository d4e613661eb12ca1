"""A day's bulk outbox rows of a node share one payload (migration 013): the rows store '' and
``outbox_rows`` puts the payload back; a store whose rows carry their own still reads, and
carries on, alike."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.storefill import at, fill_store, table
from warmup.engine import run_day
from warmup.plan import LoadedPlan

ROWS = "SELECT key, kind, payload, status FROM outbox_rows ORDER BY key"


@pytest.fixture
def plan1_store(store_path: Path) -> str:
    """SQLite only: the old store is made by rewriting a copy of the file."""
    fill_store(store_path, 300, seed=3)
    return str(store_path)


def as_before_013(store: Path) -> None:
    """Rewrite the store the way it was before migration 013: every row its own payload."""
    conn = sqlite3.connect(store)
    with conn:
        conn.execute(
            "UPDATE outbox SET payload = (SELECT p.payload FROM outbox_payloads p "
            "WHERE p.day = outbox.day AND p.node_id = outbox.node_id) WHERE payload = ''"
        )
        conn.execute("DROP VIEW outbox_rows")
        conn.execute("DROP TABLE outbox_payloads")
        conn.execute("DELETE FROM _migrations WHERE name = '013_outbox_shared_payloads'")
    conn.close()


def test_rows_share_the_payload_of_their_day_and_node(plan1: LoadedPlan, store_path: Path) -> None:
    run_day(plan1, 1, now=at("10:05"))
    kinds = table(store_path, "SELECT kind, count(*), max(payload) FROM outbox GROUP BY kind")
    assert {(kind, payload) for kind, _, payload in kinds} == {("email", ""), ("webhook", "")}
    assert all(n >= 5 for _, n, _ in kinds)
    shared = dict(table(store_path, "SELECT node_id, payload FROM outbox_payloads"))
    assert '{"template":"day-01"}' in shared.values()
    rows = table(store_path, ROWS)
    assert {r[2] for r in rows if r[1] == "email"} == {'{"template":"day-01"}'}
    assert all('"list":"exclusion"' in str(r[2]) for r in rows if r[1] == "webhook")


def test_a_store_from_before_migration_013_reads_and_carries_on_alike(
    plan1: LoadedPlan, store_path: Path, tmp_path: Path
) -> None:
    # 00:05: day 1 frozen, its rows written; the emails wait for the send time.
    assert run_day(plan1, 1, now=at("00:05")).status == "waiting"
    old = tmp_path / "old.db"
    shutil.copy(store_path, old)
    as_before_013(old)
    assert table(old, "SELECT count(*) FROM outbox WHERE payload = ''") == [(0,)]
    before = table(store_path, ROWS)
    assert table(old, ROWS) == before  # opening it migrates: the view reads own payloads
    done = run_day(plan1, 1, now=at("10:05"))
    new_way = table(store_path, ROWS)
    shutil.copy(old, store_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    again = run_day(plan1, 1, now=at("10:05"))
    assert again.status == done.status == "completed"
    assert table(store_path, ROWS) == new_way
    assert {r[2] for r in new_way if r[1] == "email"} == {'{"template":"day-01"}'}


def test_rows_keep_their_own_payload_when_the_node_changed_since(
    plan1: LoadedPlan, store_path: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh.db"
    shutil.copy(store_path, fresh)
    run_day(plan1, 1, now=at("10:05"))
    (node,) = table(store_path, "SELECT DISTINCT node_id FROM outbox WHERE kind = 'email'")[0]
    # An earlier run of the day recorded another template for the email node (the plan was
    # edited in between): this run's rows carry theirs rather than take the stale one.
    shutil.copy(fresh, store_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    stale = '{"template":"day-99"}'
    with sqlite3.connect(store_path) as conn:
        conn.execute("INSERT INTO outbox_payloads VALUES (1, ?, ?)", (node, stale))
    conn.close()
    run_day(plan1, 1, now=at("10:05"))
    emails = table(store_path, "SELECT payload FROM outbox WHERE kind = 'email'")
    assert emails and {e[0] for e in emails} == {'{"template":"day-01"}'}
    assert table(store_path, "SELECT payload FROM outbox_payloads WHERE node_id = ?", (node,)) == [
        (stale,)
    ]
