"""Opening, migrating and locking the store."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from warmup.errors import LockHeld, StoreError, StoreMissing
from warmup.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = len(MIGRATIONS)
STORE_ENV = "WARMUP_STORE"


def now_iso() -> str:
    """UTC now as ISO 8601 with offset, second precision: the store's one time format."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def store_path_for(plan_file: Path, configured: str | None = None) -> Path:
    """The store path of a plan: ``$WARMUP_STORE``, else the plan's ``store:``, else beside it."""
    override = os.environ.get(STORE_ENV)
    if override:
        return Path(override)
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else plan_file.parent / path
    return plan_file.with_suffix(".db")


class Store:
    """A migrated SQLite store. ``db`` is the sqlite-utils Database, ``conn`` its connection."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and str(path) != ":memory:" and not self.path.exists():
            raise StoreMissing(
                f"store {self.path} does not exist",
                hint="import the customers first, which creates it: "
                "`warmup import <the plan> <your Klaviyo export>.csv`",
            )
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self.conn = conn
        self._db: sqlite_utils.Database | None = None
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the connection, made on first use: importing sqlite-utils
        costs every command that opens a store (or only needs a store's path) a tenth of a
        second."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _migrate(self) -> None:
        conn = self.conn
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a warmup store: {exc}") from None
        known = {name for name, _ in MIGRATIONS}
        unknown = applied - known
        if unknown:
            raise StoreError(
                f"store {self.path} was written by a newer warmup (migrations {sorted(unknown)})",
                hint="upgrade warmup to open it",
            )
        for name, apply in MIGRATIONS:
            if name in applied:
                continue
            with self.transaction():
                apply(conn)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now_iso())
                )

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM _migrations").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (nothing half-written)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the named lock; a lock left by a dead process on this host is taken over."""
        pid, host = os.getpid(), socket.gethostname()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT pid, host, acquired_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                held_pid, held_host, since = row
                if (held_host == host and not _pid_alive(int(held_pid))) or held_pid == pid:
                    conn.execute("DELETE FROM locks WHERE name = ?", (name,))
                else:
                    raise LockHeld(
                        f"{name} is locked by process {held_pid} on {held_host} since {since}",
                        hint="wait for that run to finish; if that process is gone on another "
                        f"host, remove its lock: sqlite3 {self.path} "
                        f"\"DELETE FROM locks WHERE name = '{name}'\"",
                    )
            conn.execute(
                "INSERT INTO locks (name, pid, host, acquired_at) VALUES (?, ?, ?, ?)",
                (name, pid, host, now_iso()),
            )
        try:
            yield
        finally:
            self.conn.execute("DELETE FROM locks WHERE name = ? AND pid = ?", (name, pid))

    def lock_holder(self, name: str) -> int | None:
        """The pid holding lock ``name`` if that process is alive on this host, else None."""
        row = self.conn.execute("SELECT pid, host FROM locks WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        pid, host = int(row[0]), str(row[1])
        return pid if host != socket.gethostname() or _pid_alive(pid) else None

    def close(self) -> None:
        self.conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def open_store(path: Path | str, *, create: bool = True) -> Store:
    return Store(path, create=create)
