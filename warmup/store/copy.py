"""Copy a whole store to another backend (SQLite <-> PostgreSQL), verified table by table.

The destination is written in one transaction (nothing half-copied) from one snapshot of the
source (a day that commits meanwhile is either wholly in the copy or not at all), then both
sides are read back and compared by row count and an order-free checksum of every value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from warmup.errors import InvalidInput, Refused, StoreError, StoreMissing
from warmup.store.backends import Backend, Row, is_postgres_url
from warmup.store.database import Store
from warmup.store.import_times import table_columns

# Migrations are recorded by each store as it is migrated (with its own times); the copy
# checks both stores have the same ones instead of copying them.
_OWN_TABLES = {"_migrations"}
_MODULUS = 1 << 256


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str


def table_order(backend: Backend) -> list[str]:
    """The store's data tables, each after the tables its foreign keys point at."""
    tables = [t for t in backend.tables() if t not in _OWN_TABLES]
    parents = {t: backend.references(t) & set(tables) - {t} for t in tables}
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise StoreError(
                f"foreign keys form a cycle among {sorted(set(tables) - set(ordered))}"
            )
        ordered.extend(ready)
    return ordered


def _row_digest(row: Row) -> int:
    # Values are compared as text (SQLite hands back TEXT, PostgreSQL the same): None is kept
    # apart from the string "None", and a separator keeps ("a", "bc") apart from ("ab", "c").
    text = "\x1f".join("\x00" if value is None else f"\x01{value}" for value in row)
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def table_checksum(backend: Backend, table: str) -> tuple[int, str]:
    """Row count and a checksum of ``table`` that does not depend on row order (so two
    engines' collations cannot make equal tables differ), over its values as readers see them
    (an import's times derived: see store.import_times)."""
    count, total = 0, 0
    _, select = table_columns(backend, table)
    for row in backend.rows(f"SELECT {select} FROM {table}"):
        count += 1
        total = (total + _row_digest(row)) % _MODULUS
    return count, f"{total:064x}"


def store_checksums(store: Store) -> dict[str, tuple[int, str]]:
    """Every data table's row count and checksum, read from one snapshot."""
    backend = store.backend
    with backend.read_snapshot():
        return {table: table_checksum(backend, table) for table in table_order(backend)}


def copy_store(
    source: Path | str,
    destination: Path | str,
    *,
    replace: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> list[TableCopy]:
    """Copy every table of ``source`` into ``destination`` and verify it.

    Both stores are migrated to this warmup's schema first (as any command opening them
    would). A destination holding rows is refused unless ``replace``, which empties it first.
    """
    # Both are the command's own arguments: a mistake there is invalid input (exit 2).
    try:
        opened = Store(source, create=False)
    except StoreMissing as exc:
        raise InvalidInput(
            exc.message,
            hint="name an existing store as the source (a .db file or a postgresql:// URL)",
        ) from None
    if not is_postgres_url(destination) and Path(destination).is_dir():
        opened.close()
        raise InvalidInput(
            f"{destination} is a folder",
            hint="name the store's file, e.g. "
            f"{Path(destination) / 'plan.db'}, or a postgresql://host/database",
        )
    with closing(opened) as src, closing(Store(destination)) as dst:
        if src.backend.identity() == dst.backend.identity():
            raise Refused(f"the source and the destination are the same store ({src.location})")
        holder = src.lock_holder("run")
        if holder is not None:
            raise Refused(
                f"a day is running on {src.location} (process {holder})",
                hint="copy the store once that run has finished",
            )
        tables = table_order(src.backend)
        _check_same_schema(src, dst, tables)
        with src.backend.read_snapshot():
            with dst.backend.transaction():
                _make_room(dst, tables, replace)
                for table in tables:
                    columns = src.backend.columns(table)
                    loaded = dst.backend.bulk_load(
                        table,
                        columns,
                        src.backend.rows(f"SELECT {', '.join(columns)} FROM {table}"),
                    )
                    dst.backend.after_bulk_load(table)
                    if progress is not None:
                        progress(table, loaded)
            expected = {table: table_checksum(src.backend, table) for table in tables}
        copied = store_checksums(dst)
        return _verified(expected, copied, dst.location)


def _check_same_schema(src: Store, dst: Store, tables: Iterable[str]) -> None:
    migrations = "SELECT name FROM _migrations ORDER BY name"
    if [r[0] for r in src.backend.execute(migrations)] != [
        r[0] for r in dst.backend.execute(migrations)
    ]:
        raise StoreError(f"{src.location} and {dst.location} are at different schema versions")
    for table in tables:
        theirs, ours = dst.backend.columns(table), src.backend.columns(table)
        if sorted(theirs) != sorted(ours):
            raise StoreError(
                f"table {table} differs: {src.location} has columns {ours}, "
                f"{dst.location} has {theirs}"
            )


def _make_room(dst: Store, tables: list[str], replace: bool) -> None:
    filled = [t for t in tables if dst.backend.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    if not filled:
        return
    if not replace:
        raise Refused(
            f"the destination {dst.location} already holds data (tables {', '.join(filled)})",
            hint="copy into an empty store, or pass --replace to empty this one first",
        )
    dst.backend.clear(list(reversed(tables)))


def _verified(
    expected: dict[str, tuple[int, str]], copied: dict[str, tuple[int, str]], where: str
) -> list[TableCopy]:
    wrong = [
        f"{table}: {expected[table][0]} rows -> {copied.get(table, (0, ''))[0]}"
        for table in expected
        if copied.get(table) != expected[table]
    ]
    if wrong:
        raise StoreError(
            f"the copy in {where} differs from its source: {'; '.join(wrong)}",
            hint="nothing was changed in the source; copy again with --replace",
        )
    return [TableCopy(t, n, digest) for t, (n, digest) in expected.items()]
