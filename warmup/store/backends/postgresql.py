"""PostgreSQL through psycopg 3: a store that many processes on many hosts share."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from warmup.errors import StoreError
from warmup.store.backends.base import Backend, Dialect, Row

if TYPE_CHECKING:
    import psycopg

# Every write transaction takes this transaction-level advisory lock first: the same guarantee
# as SQLite's BEGIN IMMEDIATE (one writer at a time), so code written against SQLite's
# serialised writers stays correct here. Aggregates that want concurrent writers (outbox claims
# with FOR UPDATE SKIP LOCKED) open their own transactions without it.
_WRITER_LOCK = "warmup:writer"
_cursor_numbers = itertools.count()


def to_pyformat(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and a literal ``%`` to ``%%``), leaving quoted
    strings and identifiers alone."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class NamedRow(tuple[Any, ...]):
    """A row read by position or by column name, as ``sqlite3.Row`` is."""

    names: tuple[str, ...]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self.names.index(key))
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self.names)


def _named_rows(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    row_type = type("Row", (NamedRow,), {"names": names})
    return lambda values: row_type(values)


class PostgresBackend(Backend):
    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.location = url
        self.errors = (psycopg.Error,)
        self.conflicts = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
        try:
            # autocommit: statements outside `transaction()` commit at once, as SQLite's
            # isolation_level=None does; `transaction()` issues BEGIN itself.
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                url, autocommit=True, connect_timeout=10
            )
        except psycopg.Error as exc:
            # libpq's message can run over lines ("…Connection refused\n\tIs the server
            # running…"): one line, so the CLI prints it as one "error: …" with its hint.
            raise StoreError(
                f"cannot open store {url}: {' '.join(str(exc).split())}",
                hint="check that the server runs and the database exists "
                "(createdb <name>); a password goes in PGPASSWORD, not in the URL",
            ) from None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        return self._conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(to_pyformat(sql), tuple(params))

    def rows(self, sql: str, params: Sequence[object] = (), batch: int = 5000) -> Iterator[Row]:
        import psycopg.pq

        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            yield from super().rows(sql, params, batch)
            return
        # Inside a transaction (a copy's snapshot): a server-side cursor, so a million-row
        # table streams in batches instead of arriving whole in this process's memory.
        with self._conn.cursor(name=f"warmup_rows_{next(_cursor_numbers)}") as cursor:
            cursor.itersize = batch
            cursor.execute(to_pyformat(sql), tuple(params))
            while chunk := cursor.fetchmany(batch):
                yield from (tuple(row) for row in chunk)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)

    def script(self, ddl: str) -> None:
        # No parameters: psycopg sends the text as one simple query, several statements and
        # $$-quoted function bodies included.
        self._conn.execute(ddl.encode())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_WRITER_LOCK,)
            )
            yield

    @contextmanager
    def row_transaction(self) -> Iterator[None]:
        # No writer lock: the rows' own locks order concurrent writers.
        with self._conn.transaction():
            yield

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self._conn.execute("ROLLBACK")

    def json_text(self, column: str, key: str) -> str:
        return f"(({column})::jsonb ->> '{key}')"

    def skip_locked(self, alias: str) -> str:
        return f" FOR UPDATE OF {alias} SKIP LOCKED"

    def try_advisory_lock(self, name: str) -> bool | None:
        row = self._conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)
        ).fetchone()
        return bool(row and row[0])

    def advisory_unlock(self, name: str) -> None:
        self._conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))

    def bulk_load(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
        count = 0
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def after_bulk_load(self, table: str) -> None:
        identities = self._conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s AND is_identity = 'YES'",
            (table,),
        ).fetchall()
        for (column,) in identities:
            self._conn.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                f"coalesce(max({column}), 0) + 1, false) FROM {table}",
                (table, column),
            )

    def tables(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [str(r[0]) for r in rows]

    def columns(self, table: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        return [str(r[0]) for r in rows]

    def primary_key(self, table: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n",
            (table,),
        )
        return [str(r[0]) for r in rows]

    def references(self, table: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = %s::regclass",
            (table,),
        )
        return {str(r[0]) for r in rows}

    def clear(self, tables: Sequence[str]) -> None:
        if tables:
            self._conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    def identity(self) -> tuple[object, ...]:
        import psycopg

        try:
            # The cluster's own id: the same however host names and ports are spelled.
            row = self._conn.execute(
                "SELECT system_identifier, current_database() FROM pg_control_system()"
            ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            row = self._conn.execute(
                "SELECT inet_server_addr()::text || ':' || inet_server_port(), current_database()"
            ).fetchone()
        assert row is not None
        return ("postgresql", str(row[0]), str(row[1]))

    def name_rows(self) -> None:
        self._conn.row_factory = _named_rows

    def close(self) -> None:
        self._conn.close()
