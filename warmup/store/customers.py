"""The customers aggregate: customers by email, their free attributes, segment members.

The import's bulk load lives in :mod:`warmup.store.bulk_import`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warmup.errors import StoreError
from warmup.store.backends import Backend, Executes, open_backend


def id_for_email(conn: Executes, email: str) -> int | None:
    """The id of the customer with this (normalised) email, or None."""
    row = conn.execute("SELECT id FROM customers WHERE email = ?", (email,)).fetchone()
    return None if row is None else int(row[0])


def add(conn: Executes, email: str, *, at: str) -> int:
    """A new customer with only an (already normalised) email; its id."""
    row = conn.execute(
        "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
        (email, at, at),
    ).fetchone()
    return int(row[0])


def add_to_segment(conn: Executes, segment: str, customer_id: int, *, at: str) -> None:
    """Make the customer a member of ``segment`` (a member already stays as they are)."""
    conn.execute(
        "INSERT INTO segment_members (segment, customer_id, added_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (segment, customer_id, at),
    )


def count(conn: Executes) -> int:
    """How many customers the store holds."""
    return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


#: The compact form of ``attribute_values``: this separator first, then the cells joined by
#: it. Used for cells without a quote, backslash or control character (nearly all); any other
#: row is stored as a JSON array of strings. Two bytes a cell less than JSON's quoting.
SEPARATOR = "\x1f"


def values_json_sql(value: str, dialect: str = "sqlite") -> str:
    """SQL turning an ``attribute_values`` expression into its JSON array (text)."""
    char = "chr(31)" if dialect == "postgresql" else "char(31)"
    return (
        f"CASE WHEN substr({value}, 1, 1) = {char} THEN "
        f"'[\"' || replace(substr({value}, 2), {char}, '\",\"') || '\"]' ELSE {value} END"
    )


def attribute_cells(values: str) -> list[str]:
    """The cells of one ``attribute_values`` (either form)."""
    if values.startswith(SEPARATOR):
        return values[1:].split(SEPARATOR)
    cells: list[str] = json.loads(values)
    return cells


def attributes_sql(dialect: str = "sqlite", alias: str = "c") -> str:
    """SQL giving a customer's free attributes as one JSON object (text): ``attributes``
    overlaid with the non-empty cells of ``attribute_values`` (migration 009), named by
    ``attribute_names``."""
    c = alias
    values = values_json_sql(f"{c}.attribute_values", dialect)
    if dialect == "postgresql":
        return (
            f"CASE WHEN {c}.attribute_values IS NULL THEN {c}.attributes ELSE "
            f"({c}.attributes::jsonb || coalesce((SELECT jsonb_object_agg(n.name, v.value) "
            f"FROM json_array_elements_text(({values})::json) WITH ORDINALITY "
            "v(value, k) JOIN attribute_names n ON n.position = v.k - 1 "
            "WHERE v.value <> ''), '{}'::jsonb))::text END"
        )
    return (
        f"CASE WHEN {c}.attribute_values IS NULL THEN {c}.attributes ELSE "
        f"json_patch({c}.attributes, (SELECT json_group_object(n.name, v.value) "
        f"FROM json_each({values}) v JOIN attribute_names n ON n.position = v.key "
        "WHERE v.value <> '')) END"
    )


def attribute_names(conn: Executes) -> dict[str, int]:
    """The free export columns' names → their position in ``attribute_values``."""
    return {
        str(name): int(position)
        for name, position in conn.execute("SELECT name, position FROM attribute_names")
    }


def merged_attributes(attributes: str | None, values: str | None, names: Sequence[str]) -> str:
    """:func:`attributes_sql` in Python, for a row read with both columns; ``names`` in
    position order (:func:`attribute_names`)."""
    if values is None:
        return attributes or "{}"
    merged = json.loads(attributes or "{}")
    for name, value in zip(names, attribute_cells(values), strict=False):
        if value != "":
            merged[name] = value
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":"))


def add_attribute_names(conn: Executes, names: Sequence[str]) -> dict[str, int]:
    """Give the ``names`` not known yet the next positions; every name → its position."""
    known = attribute_names(conn)
    for name in names:
        if name not in known:
            known[name] = len(known)
            conn.execute(
                "INSERT INTO attribute_names (position, name) VALUES (?, ?)",
                (known[name], name),
            )
    return known


def property_rows(conn: Executes, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Customer id -> the fields a profile property may copy, with ``attributes`` parsed."""
    out: dict[int, dict[str, Any]] = {}
    attributes = attributes_sql(getattr(conn, "dialect", "sqlite"))
    for i in range(0, len(customer_ids), 500):
        chunk = list(customer_ids[i : i + 500])
        marks = ", ".join("?" for _ in chunk)
        for row in conn.execute(
            "SELECT id, email, first_name, last_name, phone, external_id, "
            f"{attributes} FROM customers c WHERE id IN ({marks})",
            chunk,
        ):
            out[int(row[0])] = {
                "email": row[1],
                "first_name": row[2],
                "last_name": row[3],
                "phone": row[4],
                "external_id": row[5],
                "attributes": json.loads(row[6] or "{}"),
            }
    return out


def attribute_keys(db: Backend) -> set[str]:
    """Every free export column some customer has a value in."""
    values = values_json_sql("c.attribute_values", db.dialect)
    keys = (
        "SELECT DISTINCT jsonb_object_keys(attributes::jsonb) FROM customers "
        "WHERE attributes IS NOT NULL UNION SELECT n.name FROM attribute_names n WHERE EXISTS "
        f"(SELECT 1 FROM customers c WHERE ({values})::json ->> n.position::int <> '')"
        if db.dialect == "postgresql"
        else "SELECT DISTINCT j.key FROM customers c, json_each(c.attributes) j "
        "UNION SELECT n.name FROM attribute_names n WHERE EXISTS (SELECT 1 FROM customers c "
        f"WHERE json_extract({values}, '$[' || n.position || ']') <> '')"
    )
    return {str(key) for (key,) in db.execute(keys)}


def row_by_email(db: Backend, email: str) -> Any:
    """The whole customer row (a named row when the backend names them), its ``attributes``
    the merged JSON object (:func:`attributes_sql`)."""
    columns = ", ".join(f"c.{name}" for name in db.columns("customers") if name != "attributes")
    return db.execute(
        f"SELECT {columns}, {attributes_sql(db.dialect)} AS attributes FROM customers c "
        "WHERE email = ?",
        (email,),
    ).fetchone()


def in_segment(conn: Executes, segment: str, customer_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM segment_members WHERE segment = ? AND customer_id = ?",
        (segment, customer_id),
    ).fetchone()
    return row is not None


def email_for_id(conn: Executes, customer_id: int) -> str | None:
    row = conn.execute("SELECT email FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return None if row is None else str(row[0])


def count_if_writable(path: Path) -> int:
    """The number of customers in the SQLite store at ``path``, read under its write lock:
    proof that a run could write there. Raises ``sqlite3.Error`` when it cannot."""
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        customers = int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return customers


def count_if_writable_at(url: str) -> int:
    """The number of customers in the PostgreSQL store at ``url``, read in a write transaction
    whose role may write the outbox: proof that a run could write there. Raises
    :class:`StoreError` when it cannot (server, database, tables, rights); never migrates."""
    backend = open_backend(url)
    try:
        with backend.transaction():
            customers = int(backend.execute("SELECT count(*) FROM customers").fetchone()[0])
            writable = backend.execute(
                "SELECT has_table_privilege('outbox', 'INSERT, UPDATE')"
            ).fetchone()[0]
    except backend.errors as exc:
        raise StoreError(
            f"{url} is not a warmup store yet ({str(exc).strip().splitlines()[0]})",
            hint="import the customers first, which makes its tables: warmup import",
        ) from None
    finally:
        backend.close()
    if not writable:
        raise StoreError(f"{url}: this role may not write the store's tables")
    return customers
