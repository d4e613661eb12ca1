"""Opening, migrating and locking the store, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from warmup.clock import now
from warmup.errors import LockHeld, StoreError, StoreMissing
from warmup.store.backends import (
    Backend,
    Dialect,
    check_location,
    is_postgres_url,
    open_backend,
    store_location,
)
from warmup.store.migrations import MIGRATIONS, RENAMED

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = len(MIGRATIONS)
# PostgreSQL's SQLSTATE for a statement the role lacks the rights for (e.g. not the owner)
_INSUFFICIENT_PRIVILEGE = "42501"
STORE_ENV = "WARMUP_STORE"


def now_iso(moment: datetime | None = None) -> str:
    """``moment`` (default: now) in the store's one time format: ISO 8601 UTC, seconds."""
    return (moment or now()).astimezone(UTC).replace(microsecond=0).isoformat()


def store_path_for(
    plan_file: Path, configured: str | None = None, *, env: Mapping[str, str] | None = None
) -> Path:
    """The store of a plan: ``$WARMUP_STORE`` (in ``env``, else the process environment),
    else the plan's ``store:``, else beside it.

    A ``postgresql://host/db`` URL is returned as a Path too (pathlib folds its ``//``);
    ``open_store`` restores it (backends.store_location)."""
    override = (os.environ if env is None else env).get(STORE_ENV)
    if override:
        check_location(override)
        return Path(override)
    if configured:
        check_location(configured)
        if is_postgres_url(configured):
            return Path(configured)
        path = Path(configured)
        return path if path.is_absolute() else plan_file.parent / path
    return plan_file.with_suffix(".db")


class Store:
    """A migrated store. ``backend`` is the seam the store's modules use on either engine.

    ``conn`` and ``db`` (the sqlite3 connection and its sqlite-utils view) serve code that is
    not behind the seam yet: on a PostgreSQL store they raise StoreError naming that.
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.location = store_location(path)
        self.path = Path(self.location)
        self.backend: Backend
        if is_postgres_url(self.location):
            # The database itself is created by its administrator (createdb); its tables by
            # the migrations below, as on SQLite.
            self.backend = open_backend(self.location)
        else:
            memory = self.location == ":memory:"
            if not create and not memory and not self.path.exists():
                raise StoreMissing(
                    f"store {self.path} does not exist",
                    hint="import the customers first, which creates it: "
                    "`warmup import <the plan> <your Klaviyo export>.csv`",
                )
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.backend = open_backend(self.location)
        self._db: sqlite_utils.Database | None = None
        self._advisory_held: set[str] = set()
        self._migrate()

    @property
    def dialect(self) -> Dialect:
        return self.backend.dialect

    @property
    def conn(self) -> sqlite3.Connection:
        conn = self.backend.conn
        if not isinstance(conn, sqlite3.Connection):
            raise StoreError(
                f"this operation runs on SQLite stores only so far, and {self.location} is "
                f"a {self.backend.dialect} store",
                hint="copy the store to a SQLite file for it: "
                f"`warmup store copy {self.location} <plan>.db`",
            )
        return conn

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
        backend = self.backend
        read = "SELECT name FROM _migrations"
        try:
            recorded = {str(row[0]) for row in backend.execute(read)}
        except backend.errors:
            try:
                # In a writer's transaction: PostgreSQL's CREATE TABLE IF NOT EXISTS is not
                # safe against a second process creating the table at the same moment.
                with backend.transaction():
                    backend.execute(
                        "CREATE TABLE IF NOT EXISTS _migrations "
                        "(name TEXT PRIMARY KEY, applied_at TEXT)"
                    )
                recorded = {str(row[0]) for row in backend.execute(read)}
            except backend.errors as exc:
                raise StoreError(f"{self.location} is not a warmup store: {exc}") from None
        for old, new in RENAMED.items():
            if old in recorded:
                with backend.transaction():
                    backend.execute("UPDATE _migrations SET name = ? WHERE name = ?", (new, old))
                recorded = (recorded - {old}) | {new}
        known = {name for name, _ in MIGRATIONS}
        unknown = recorded - known
        if unknown:
            raise StoreError(
                f"store {self.location} was written by a newer warmup "
                f"(migrations {sorted(unknown)})",
                hint="upgrade warmup to open it",
            )
        for name, apply in MIGRATIONS:
            if name in recorded:
                continue
            with backend.transaction():
                # Two processes opening a new store at once: the second waits for the first's
                # transaction and must not apply the migration again.
                done = backend.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,))
                if done.fetchone() is not None:
                    continue
                try:
                    apply(backend)
                except backend.errors as exc:
                    if getattr(exc, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                        raise
                    raise StoreError(
                        f"store {self.location} needs migration {name}, which this database "
                        f"role may not run: {str(exc).strip()}",
                        hint="run any warmup command once (`warmup status PLAN`) as the role "
                        "that owns the store's tables; roles with table grants only work after",
                    ) from None
                backend.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now_iso())
                )

    @property
    def schema_version(self) -> int:
        return int(self.backend.execute("SELECT count(*) FROM _migrations").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (nothing half-written).
        Portable code uses ``backend.transaction()``."""
        conn = self.conn
        with self.backend.transaction():
            yield conn

    def get_meta(self, key: str) -> str | None:
        row = self.backend.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.backend.execute(
            self.backend.upsert_sql("meta", ("key", "value"), ("key",)), (key, value)
        )

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the named lock. On SQLite a row in ``locks``: one left by a dead process on this
        host is taken over. On PostgreSQL a session advisory lock, which the server releases
        when the holder's connection ends, on whatever host it ran; the ``locks`` row only
        says who holds it."""
        if self.backend.dialect == "postgresql":
            with self._advisory_lock(name):
                yield
            return
        pid, host = os.getpid(), socket.gethostname()
        backend = self.backend
        with backend.transaction():
            row = backend.execute(
                "SELECT pid, host, acquired_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                held_pid, held_host, since = row
                if (held_host == host and not _pid_alive(int(held_pid))) or held_pid == pid:
                    backend.execute("DELETE FROM locks WHERE name = ?", (name,))
                else:
                    raise LockHeld(
                        f"{name} is locked by process {held_pid} on {held_host} since {since}",
                        hint="wait for that run to finish; if that process is gone on another "
                        f"host, remove its lock: sqlite3 {self.path} "
                        f"\"DELETE FROM locks WHERE name = '{name}'\"",
                    )
            backend.execute(
                "INSERT INTO locks (name, pid, host, acquired_at) VALUES (?, ?, ?, ?)",
                (name, pid, host, now_iso()),
            )
        try:
            yield
        finally:
            backend.execute("DELETE FROM locks WHERE name = ? AND pid = ?", (name, pid))

    @contextmanager
    def _advisory_lock(self, name: str) -> Iterator[None]:
        backend, pid, host = self.backend, os.getpid(), socket.gethostname()
        if not backend.try_advisory_lock(name):
            row = backend.execute(
                "SELECT pid, host, acquired_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            holder = "another process" if row is None else f"process {row[0]} on {row[1]}"
            since = "" if row is None else f" since {row[2]}"
            raise LockHeld(
                f"{name} is locked by {holder}{since}",
                hint="wait for that run to finish: the lock ends with its database connection",
            )
        try:
            with backend.transaction():
                # A row left by a holder whose connection died is stale: we hold the lock now.
                backend.execute("DELETE FROM locks WHERE name = ?", (name,))
                backend.execute(
                    "INSERT INTO locks (name, pid, host, acquired_at) VALUES (?, ?, ?, ?)",
                    (name, pid, host, now_iso()),
                )
            self._advisory_held.add(name)
            yield
        finally:
            self._advisory_held.discard(name)
            backend.execute("DELETE FROM locks WHERE name = ? AND pid = ?", (name, pid))
            backend.advisory_unlock(name)

    def lock_holder(self, name: str) -> int | None:
        """The pid holding lock ``name`` if that process is alive (on PostgreSQL: its lock is
        held), else None."""
        row = self.backend.execute("SELECT pid, host FROM locks WHERE name = ?", (name,)).fetchone()
        if self.backend.dialect == "postgresql":
            if name in self._advisory_held:
                return os.getpid()
            # Advisory locks are re-entrant within a session: only another session's hold
            # makes this fail.
            if self.backend.try_advisory_lock(name):
                self.backend.advisory_unlock(name)
                return None
            return None if row is None else int(row[0])
        if row is None:
            return None
        pid, host = int(row[0]), str(row[1])
        return pid if host != socket.gethostname() or _pid_alive(pid) else None

    def close(self) -> None:
        self.backend.close()


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
