"""What a store backend must supply: the few things SQLite and PostgreSQL do differently.

The aggregates (store/outbox.py, consents.py, …) write portable SQL with ``?`` placeholders and
call the backend for the rest. What both engines already share is written once and not put
behind the seam: ``INSERT … ON CONFLICT (…) DO UPDATE SET x = excluded.x``, ``RETURNING``,
``CREATE TEMP TABLE``, views, ``ALTER TABLE … ADD COLUMN``.

What differs, and where it lives:
- connecting, pragmas/session settings: each backend's constructor;
- parameter style (``?`` vs psycopg's ``%s``): ``execute``/``executemany`` translate;
- transactions (``BEGIN IMMEDIATE`` takes SQLite's write lock up front): ``transaction``;
- JSON field access (``json_extract`` vs ``->>``): ``json_text``;
- "evaluate a day once" (a row in ``locks`` checked by pid vs a session advisory lock that
  ends with the connection): ``try_advisory_lock``/``advisory_unlock``;
- bulk load (``executemany`` vs ``COPY … FROM STDIN``): ``bulk_load``, then ``after_bulk_load``
  (PostgreSQL's identity sequences must move past ids loaded explicitly);
- introspection (``sqlite_master``/``PRAGMA`` vs ``information_schema``): ``tables``,
  ``columns``, ``primary_key``, ``references``;
- DDL (``INTEGER PRIMARY KEY`` rowids, ``WITHOUT ROWID``, triggers): migrations.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]


class Executes(Protocol):
    """What the aggregates' module functions run their SQL on: a :class:`Backend` (either
    engine), or a sqlite3 connection from code not yet behind the seam (SQL written with ``?``
    placeholders means the same to both)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


class Backend(ABC):
    """One open connection to a store database and the dialect-specific operations on it."""

    dialect: Dialect
    #: Where the store is, fit to print: a file path or a URL without a password.
    location: str
    #: The driver's exception base classes.
    errors: tuple[type[Exception], ...]
    #: Errors that abort a row-level transaction only because another one crossed it (a
    #: deadlock the server broke): running it again is right. None on SQLite's one writer.
    conflicts: tuple[type[Exception], ...] = ()

    @property
    @abstractmethod
    def conn(self) -> Any:
        """The driver's connection (sqlite3 or psycopg), for code not yet behind the seam."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        """Run one statement written with ``?`` placeholders; returns a DB-API cursor."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement (``?`` placeholders) for each row."""

    @abstractmethod
    def script(self, ddl: str) -> None:
        """Run a DDL script statement by statement, inside the caller's transaction."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN … COMMIT, rolled back on any exception; taking the write lock up front."""

    def row_transaction(self) -> AbstractContextManager[None]:
        """BEGIN … COMMIT like :meth:`transaction`, but locking only the rows it writes, so
        that several processes' writes to different rows go on at once (workers recording
        their results). Where the engine has one writer anyway (SQLite) it is
        :meth:`transaction`."""
        return self.transaction()

    def derived_writes_transaction(self) -> AbstractContextManager[None]:
        """:meth:`transaction` for bulk writes whose every customer id is read from
        ``customers`` (or rows that reference it) in the same transaction, so none can dangle:
        SQLite, which checks each reference with a lookup per written row, skips that;
        PostgreSQL keeps checking (turning its checks off takes superuser rights)."""
        return self.transaction()

    @abstractmethod
    def read_snapshot(self) -> AbstractContextManager[None]:
        """A read-only transaction whose reads all see one moment, whatever commits meanwhile."""

    @abstractmethod
    def json_text(self, column: str, key: str) -> str:
        """A SQL expression for the text value of ``key`` in the JSON text ``column``."""

    @abstractmethod
    def try_advisory_lock(self, name: str) -> bool | None:
        """Take a lock that dies with this connection; None where the engine has none (SQLite,
        whose one writer holds the whole file and whose locks live in the ``locks`` table)."""

    @abstractmethod
    def advisory_unlock(self, name: str) -> None: ...

    @abstractmethod
    def bulk_load(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
        """Append rows to ``table`` as fast as the engine allows; returns the number loaded."""

    @abstractmethod
    def after_bulk_load(self, table: str) -> None:
        """Make the table ready for ordinary inserts after ids were loaded explicitly."""

    @abstractmethod
    def tables(self) -> list[str]:
        """The base tables (not views), sorted by name."""

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """Column names in declaration order."""

    @abstractmethod
    def primary_key(self, table: str) -> list[str]:
        """The primary-key columns, in key order."""

    @abstractmethod
    def references(self, table: str) -> set[str]:
        """The tables ``table``'s foreign keys point at."""

    @abstractmethod
    def clear(self, tables: Sequence[str]) -> None:
        """Delete every row of ``tables`` (children first), resetting generated ids."""

    @abstractmethod
    def identity(self) -> tuple[object, ...]:
        """What tells two connections to the same database apart from two databases, however
        their locations are spelled."""

    @abstractmethod
    def name_rows(self) -> None:
        """From now on rows answer to both ``row[0]`` and ``row["column"]`` (sqlite3.Row's
        way), for readers that name columns (``warmup explain``)."""

    @abstractmethod
    def close(self) -> None: ...

    def rows(self, sql: str, params: Sequence[object] = (), batch: int = 5000) -> Iterator[Row]:
        """Stream a query's rows in batches, so a million-row table is never all in memory."""
        cursor = self.execute(sql, params)
        while chunk := cursor.fetchmany(batch):
            yield from (tuple(row) for row in chunk)

    def skip_locked(self, alias: str) -> str:
        """The clause that makes a ``SELECT`` lock the rows it returns and pass over rows
        another transaction holds (several workers claiming at once); empty where one writer
        holds the whole database anyway (SQLite)."""
        return ""

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """``INSERT … ON CONFLICT (key) DO UPDATE`` of the non-key columns: one text for both
        engines (SQLite 3.24+, PostgreSQL 9.5+)."""
        updates = [c for c in columns if c not in key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT ({', '.join(key)}) {action}"
        )
