"""The import time a customer's rows leave out (migration 012), put back where they are read.

An import writes '' instead of its start time into the rows of the customers it creates
(``customers.created_at`` and ``updated_at``, their consents' ``changed_at`` and consent
changes', their segment membership's ``added_at``): the same 25 bytes up to four times a
customer. '' reads as the start of the import that created the customer, found through
``import_customers`` (the first customer id each import gave). Every reader of whole rows
(``warmup export``, the store copy's checksums) selects :func:`table_columns`, so what it sees
is what the store held before.
"""

from __future__ import annotations

from warmup.store.backends import Backend

#: The value an import writes for "when the import that created the customer started".
AS_IMPORTED = ""

#: The time columns that may hold :data:`AS_IMPORTED`, with their table's customer id column.
_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {"created_at": "id", "updated_at": "id"},
    "consents": {"changed_at": "customer_id"},
    # a consent changed twice within the import that created its customer (a duplicate row)
    "consent_changes": {"changed_at": "customer_id"},
    "segment_members": {"added_at": "customer_id"},
}


def imported_at_sql(column: str, customer_id: str) -> str:
    """SQL giving ``column``'s time, '' read as the start of ``customer_id``'s import (both
    qualified by their table: a bare ``id`` would name the imports' id in the subquery)."""
    return (
        f"CASE WHEN {column} = '' THEN (SELECT i.started_at FROM import_customers r "
        f"JOIN imports i ON i.id = r.import_id WHERE r.first_id <= {customer_id} "
        f"ORDER BY r.first_id DESC LIMIT 1) ELSE {column} END"
    )


def table_columns(backend: Backend, table: str) -> tuple[list[str], str]:
    """``table``'s column names, and the select list reading them as the store holds them
    (each import time derived, named as its column)."""
    columns = backend.columns(table)
    derived = _COLUMNS.get(table, {})
    select = ", ".join(
        f"{imported_at_sql(f'{table}.{c}', f'{table}.{derived[c]}')} AS {c}" if c in derived else c
        for c in columns
    )
    return columns, select
