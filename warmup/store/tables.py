"""A whole table in primary-key order, on either backend — what `warmup export` writes.

Columns and key come from the backend's own schema reading, rows stream in batches (a
server-side cursor on PostgreSQL inside a snapshot), so a table of any size is never all in
memory."""

from __future__ import annotations

from collections.abc import Iterator

from warmup.store.backends.base import Row
from warmup.store.database import Store
from warmup.store.import_times import table_columns

# An audit sees every outbox row's payload, the ones its day's rows share included (the view
# has the table's columns).
_READ_FROM = {"outbox": "outbox_rows"}


def read_table(store: Store, table: str) -> tuple[list[str], Iterator[Row]]:
    """``table``'s column names and its rows (tuples in that column order), in key order.
    ``table`` must be one of the store's tables (callers pass a name from a fixed list)."""
    backend = store.backend
    if table not in backend.tables():
        raise ValueError(f"the store has no table {table!r}")
    # an import's times as readers see them (store.import_times), each under its column's name
    columns, select = table_columns(backend, table)
    order = backend.primary_key(table) or columns
    source = _READ_FROM.get(table, table)
    sql = f"SELECT {select} FROM {source} ORDER BY {', '.join(order)}"
    return columns, backend.rows(sql)
