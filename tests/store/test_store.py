from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from warmup.errors import LockHeld, StoreError
from warmup.store import SCHEMA_VERSION, open_store, store_path_for
from warmup.store.migrations import MIGRATIONS


def test_new_store_is_at_current_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"customers", "consents", "segment_members", "outbox", "journeys", "events"} <= tables


def test_older_store_is_migrated_not_broken(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    first_name, first = MIGRATIONS[0]
    first(conn)
    conn.execute("INSERT INTO _migrations VALUES (?, 'then')", (first_name,))
    conn.execute(
        "INSERT INTO customers (email, created_at, updated_at) VALUES "
        "('kept@example.com', 'then', 'then')"
    )
    conn.commit()
    conn.close()
    store = open_store(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.conn.execute("SELECT email FROM customers").fetchall() == [("kept@example.com",)]


def test_store_from_newer_warmup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(path).conn.execute("INSERT INTO _migrations VALUES ('999_future', 'x')")
    with pytest.raises(StoreError, match="newer warmup"):
        open_store(path)


def test_store_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plans" / "acme.yaml"
    monkeypatch.delenv("WARMUP_STORE")
    assert store_path_for(plan) == tmp_path / "plans" / "acme.db"
    assert store_path_for(plan, "data/x.db") == tmp_path / "plans" / "data" / "x.db"
    monkeypatch.setenv("WARMUP_STORE", "/elsewhere/y.db")
    assert store_path_for(plan, "data/x.db") == Path("/elsewhere/y.db")


def test_lock_excludes_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        import socket

        store.conn.execute(
            "INSERT INTO locks VALUES ('run', ?, ?, 'now')", (holder.pid, socket.gethostname())
        )
        with pytest.raises(LockHeld, match=f"process {holder.pid}"), store.lock("run"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with store.lock("run"):  # the holder is dead: its lock is stale
        row = store.conn.execute("SELECT pid FROM locks").fetchone()
        assert row == (os.getpid(),)
    assert store.conn.execute("SELECT count(*) FROM locks").fetchone()[0] == 0
