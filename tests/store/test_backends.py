"""The backend seam's contract, on SQLite and on a real PostgreSQL alike."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from warmup.errors import InvalidInput, LockHeld, StoreError
from warmup.store import SCHEMA_VERSION, open_store, store_path_for
from warmup.store.backends import store_location as restore_location

NOW = "2026-12-01T00:00:00+00:00"


def _add_customer(location: str, email: str) -> int:
    with closing(open_store(location)) as store:
        row = store.backend.execute(
            "INSERT INTO customers (email, attributes, created_at, updated_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (email, '{"plan": "100% gold", "q": "a?b"}', NOW, NOW),
        ).fetchone()
        return int(row[0])


def test_new_store_is_migrated(store_location: str) -> None:
    with closing(open_store(store_location)) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert {"customers", "consents", "outbox", "journeys", "events", "locks"} <= set(
            store.backend.tables()
        )
        assert store.backend.primary_key("consents") == ["customer_id", "channel"]
        assert store.backend.references("allocations") == {"customers"}
    # Opening it again applies nothing twice.
    with closing(open_store(store_location)) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_both_backends_make_the_same_tables(tmp_path: Path, postgres_url: str) -> None:
    with (
        closing(open_store(tmp_path / "s.db")) as sqlite,
        closing(open_store(postgres_url)) as postgres,
    ):
        assert sqlite.backend.tables() == postgres.backend.tables()
        for table in sqlite.backend.tables():
            assert sqlite.backend.columns(table) == postgres.backend.columns(table), table
            assert sqlite.backend.primary_key(table) == postgres.backend.primary_key(table)
        view = "SELECT day, customer_id, path, last_label FROM journey_rows"
        assert sqlite.backend.execute(view).fetchall() == postgres.backend.execute(view).fetchall()


def test_placeholders_upsert_returning_and_json(store_location: str) -> None:
    first = _add_customer(store_location, "a@example.com")
    second = _add_customer(store_location, "b@example.com")
    assert second == first + 1
    with closing(open_store(store_location)) as store:
        backend = store.backend
        plan = backend.json_text("attributes", "plan")
        # '?' and '%' inside a literal are text, not placeholders.
        rows = backend.execute(
            f"SELECT email, {plan}, 'literal ? and %' FROM customers WHERE email LIKE ? "
            "ORDER BY email",
            ("%@example.com",),
        ).fetchall()
        assert [tuple(r) for r in rows] == [
            ("a@example.com", "100% gold", "literal ? and %"),
            ("b@example.com", "100% gold", "literal ? and %"),
        ]
        store.set_meta("cursor", "1")
        store.set_meta("cursor", "2")
        assert store.get_meta("cursor") == "2"
        assert store.get_meta("missing") is None


def test_transaction_rolls_back_everything(store_location: str) -> None:
    with closing(open_store(store_location)) as store:
        with pytest.raises(RuntimeError), store.backend.transaction():
            store.set_meta("half", "written")
            raise RuntimeError("crash half-way")
        assert store.get_meta("half") is None


def test_consent_history_trigger(store_location: str) -> None:
    customer = _add_customer(store_location, "c@example.com")
    with closing(open_store(store_location)) as store:
        backend = store.backend
        backend.execute(
            "INSERT INTO consents VALUES (?, 'email', 'subscribed', ?, 'import')", (customer, NOW)
        )
        for status in ("unsubscribed", "unsubscribed", "subscribed"):
            backend.execute(
                "UPDATE consents SET status = ?, source = 'test' WHERE customer_id = ?",
                (status, customer),
            )
        history = backend.execute(
            "SELECT old_status, new_status FROM consent_changes ORDER BY id"
        ).fetchall()
        assert [tuple(r) for r in history] == [
            ("subscribed", "unsubscribed"),
            ("unsubscribed", "subscribed"),
        ]


HOLD_LOCK = """
import sys, time
from warmup.store import open_store
store = open_store(sys.argv[1])
with store.lock("run"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_day_runs_once_and_a_killed_holder_frees_it(store_location: str) -> None:
    """Another process's run is refused; once it is SIGKILLed the lock is free again (SQLite:
    the dead pid's row is taken over on this host; PostgreSQL: the server ends the lock with
    the connection, on whatever host the holder ran)."""
    open_store(store_location).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store_location], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with closing(open_store(store_location)) as store:
            assert store.lock_holder("run") == holder.pid
            refused = pytest.raises(LockHeld, match=f"run is locked by process {holder.pid}")
            with refused, store.lock("run"):
                pass
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            # The server notices the dropped connection a moment later.
            for _ in range(200):
                if store.lock_holder("run") is None:
                    break
                time.sleep(0.05)
            assert store.lock_holder("run") is None
            with store.lock("run"):
                assert store.lock_holder("run") is not None
            assert store.lock_holder("run") is None
    finally:
        holder.kill()
        holder.wait()


def test_code_not_yet_on_the_seam_says_so(postgres_url: str) -> None:
    with closing(open_store(postgres_url)) as store, pytest.raises(StoreError, match="SQLite"):
        store.conn.execute("SELECT 1")


def test_url_with_password_is_refused() -> None:
    with pytest.raises(InvalidInput, match="password") as raised:
        open_store("postgresql://postgres:hunter2@127.0.0.1:5432/x")
    assert "PGPASSWORD" in raised.value.render()
    assert "hunter2" not in raised.value.render()


def test_plan_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARMUP_STORE")
    url = "postgresql://warmup@db.internal:5432/acme?sslmode=require"
    found = store_path_for(tmp_path / "acme.yaml", url)
    assert restore_location(found) == url
    monkeypatch.setenv("WARMUP_STORE", url)
    assert restore_location(store_path_for(tmp_path / "acme.yaml", None)) == url


def test_postgres_write_transactions_take_turns(postgres_url: str) -> None:
    """As SQLite's BEGIN IMMEDIATE: while one store writes in a transaction, another's write
    transaction waits (here: gives up after its lock_timeout instead of waiting)."""
    import psycopg

    with closing(open_store(postgres_url)) as first, closing(open_store(postgres_url)) as other:
        with first.backend.transaction():
            first.set_meta("turn", "first")
            other.backend.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable), other.backend.transaction():
                other.set_meta("turn", "other")
            # Reads are not held up.
            assert other.get_meta("turn") is None
        with other.backend.transaction():
            other.set_meta("turn", "other")
        assert first.get_meta("turn") == "other"
