"""The embedded default: one SQLite file per plan."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from warmup.errors import StoreError
from warmup.store.backends.base import Backend, Dialect, Row


class SQLiteBackend(Backend):
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.location = str(path)
        try:
            conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        self._conn = conn
        self.errors = (sqlite3.Error,)

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)

    def script(self, ddl: str) -> None:
        # executescript would commit the migration's transaction half-way.
        statement = ""
        for line in ddl.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self._conn.execute(statement)
                statement = ""
        if statement.strip():
            self._conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def derived_writes_transaction(self) -> Iterator[None]:
        # SQLite checks a foreign key with a lookup per written row: a tenth of a day's
        # allocation and outbox writes, for ids read from `customers` in the same write
        # transaction (customers are never deleted). The pragma only takes effect outside a
        # transaction; it is restored after, whatever happens (as the import does).
        checked = self._conn.execute("PRAGMA foreign_keys").fetchone()[0]
        self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.transaction():
                yield
        finally:
            self._conn.execute(f"PRAGMA foreign_keys = {int(checked)}")

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        # WAL mode: a deferred transaction reads one snapshot from its first read on.
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("ROLLBACK")

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def try_advisory_lock(self, name: str) -> bool | None:
        return None

    def advisory_unlock(self, name: str) -> None:
        return None

    def bulk_load(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
        count = 0

        def counted() -> Iterator[Row]:
            nonlocal count
            for row in rows:
                count += 1
                yield row

        marks = ", ".join("?" for _ in columns)
        self._conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", counted()
        )
        return count

    def after_bulk_load(self, table: str) -> None:
        # An INTEGER PRIMARY KEY takes max(id) + 1 on its own.
        return None

    def tables(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        return [str(r[0]) for r in rows]

    def columns(self, table: str) -> list[str]:
        return [str(r[1]) for r in self._conn.execute(f"PRAGMA table_info({table})")]

    def primary_key(self, table: str) -> list[str]:
        info = [(int(r[5]), str(r[1])) for r in self._conn.execute(f"PRAGMA table_info({table})")]
        return [name for pk, name in sorted(info) if pk > 0]

    def references(self, table: str) -> set[str]:
        return {str(r[2]) for r in self._conn.execute(f"PRAGMA foreign_key_list({table})")}

    def clear(self, tables: Sequence[str]) -> None:
        for table in tables:
            self._conn.execute(f"DELETE FROM {table}")

    def identity(self) -> tuple[object, ...]:
        return ("sqlite", str(Path(self.location).resolve()))

    def name_rows(self) -> None:
        self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self._conn.close()
