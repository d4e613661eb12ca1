"""The customers aggregate: customers by email, and the bulk load an import runs.

The bulk load is built for speed (exports run to millions of rows): each row goes to SQLite as
the CSV reader gave it (one parameter per column, no per-row tuple) into a temporary view whose
``INSTEAD OF INSERT`` trigger normalises the columns, upserts the customer and merges its
consent while the customer's index pages are hot: one pass, no staging table and no joins
afterwards. Segment memberships follow with one set-based statement, all in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmup.errors import StoreError
from warmup.store import consents
from warmup.store.backends import Backend, Executes, open_backend
from warmup.store.database import Store, now_iso


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


def property_rows(conn: Executes, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Customer id -> the fields a profile property may copy, with ``attributes`` parsed."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(customer_ids), 500):
        chunk = list(customer_ids[i : i + 500])
        marks = ", ".join("?" for _ in chunk)
        for row in conn.execute(
            "SELECT id, email, first_name, last_name, phone, external_id, attributes "
            f"FROM customers WHERE id IN ({marks})",
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
    """Every free export column some customer has a value in (``customers.attributes``)."""
    keys = (
        "SELECT DISTINCT jsonb_object_keys(attributes::jsonb) FROM customers "
        "WHERE attributes IS NOT NULL"
        if db.dialect == "postgresql"
        else "SELECT DISTINCT j.key FROM customers c, json_each(c.attributes) j"
    )
    return {str(key) for (key,) in db.execute(keys)}


def row_by_email(conn: Executes, email: str) -> Any:
    """The whole customer row (``sqlite3.Row`` when the connection uses that row factory)."""
    return conn.execute("SELECT * FROM customers WHERE email = ?", (email,)).fetchone()


def in_segment(conn: Executes, segment: str, customer_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM segment_members WHERE segment = ? AND customer_id = ?",
        (segment, customer_id),
    ).fetchone()
    return row is not None


def email_for_id(conn: Executes, customer_id: int) -> str | None:
    row = conn.execute("SELECT email FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class ImportLayout:
    """Where an export's columns are: ``width`` columns, the email's and the phone's index,
    and ``raw`` (field → index) for the columns the trigger normalises (external_id,
    klaviyo_id, first_name, last_name, last_open, last_click, consent, suppressions). Each
    row passed to :func:`bulk_import` has ``width`` cells and then its free columns' JSON."""

    width: int
    email: int
    phone: int | None
    raw: Mapping[str, int]
    # SMS consent (seed 004's values, case and spaces ignored), stored as the `sms` consent
    sms: int | None = None

    def insert_sql(self) -> str:
        """The statement ``executemany`` runs: one parameter per CSV column, then the JSON."""
        marks = ", ".join(f"?{i + 1}" for i in range(self.width + 1))
        return f"INSERT INTO temp.import_rows VALUES ({marks})"

    def view_sql(self) -> str:
        columns = ", ".join(f"NULL AS c{i}" for i in range(self.width))
        return f"CREATE TEMP VIEW import_rows AS SELECT {columns}, NULL AS attributes"

    def trigger_sql(self, now: str, existing_max_id: int) -> str:
        """Per row: upsert the customer (empty cells are NULL, a later non-empty value wins),
        merge its consent (sticky unsubscribes), and remember which customers that existed
        before the import it touched (for the segment and the report). Customers the import
        creates are the ones above ``existing_max_id``."""
        new_ = {name: f"new.c{i}" for name, i in self.raw.items()}

        def text(field_name: str) -> str:
            return f"nullif(trim({new_[field_name]}), '')" if field_name in new_ else "NULL"

        def date(field_name: str) -> str:
            # Klaviyo exports write `2026-10-13 04:13:50`; anything unparseable becomes NULL
            return (
                f"strftime('%Y-%m-%dT%H:%M:%S', nullif(trim({new_[field_name]}), ''))"
                if field_name in new_
                else "NULL"
            )

        email = f"new.c{self.email}"
        phone = "NULL" if self.phone is None else f"nullif(new.c{self.phone}, '')"
        consent = f"upper(trim(coalesce({new_.get('consent', 'NULL')}, '')))"
        suppressions = f"nullif(trim({new_.get('suppressions', 'NULL')}), '')"
        # Klaviyo's consent values; any listed suppression suppresses, except that an
        # unsubscribe listed as its own suppression stays an unsubscribe.
        status = f"""
            CASE
              WHEN {suppressions} IS NOT NULL AND {suppressions} NOT IN ('[]', '{{}}')
                   AND NOT ({consent} = 'UNSUBSCRIBED'
                            AND {suppressions} IN ('[''UNSUBSCRIBE'']', '["UNSUBSCRIBE"]',
                                                   'UNSUBSCRIBE'))
                THEN 'suppressed'
              WHEN {consent} = 'SUBSCRIBED' THEN 'subscribed'
              WHEN {consent} = 'UNSUBSCRIBED' THEN 'unsubscribed'
              ELSE 'never_subscribed'
            END"""
        now_ = _sql_string(now)
        touched = (
            f"""
            INSERT OR IGNORE INTO import_touched (id)
            SELECT id FROM customers WHERE email = {email} AND id <= {existing_max_id};"""
            if existing_max_id
            else ""
        )
        # An unsubscribe or suppression is sticky: an import can suppress, never resubscribe.
        consent_upsert = consents.upsert_sql(
            f"SELECT id, '{consents.EMAIL}', {status}, {now_}, 'import' "
            f"FROM customers WHERE email = {email}",
            keep=consents.WITHDRAWN,
            unless=(consents.SUPPRESSED,),
        )
        return f"""
        CREATE TEMP TRIGGER import_row INSTEAD OF INSERT ON import_rows
        BEGIN
            INSERT INTO customers (email, phone, external_id, klaviyo_id, first_name,
                last_name, attributes, last_open_at, last_click_at, last_engaged_at,
                created_at, updated_at)
            SELECT {email}, {phone}, {text("external_id")}, {text("klaviyo_id")},
                {text("first_name")}, {text("last_name")}, new.attributes, open_at, click_at,
                nullif(max(coalesce(open_at, ''), coalesce(click_at, '')), ''), {now_}, {now_}
            -- OFFSET 0 keeps SQLite from inlining the subquery, which would parse each date
            -- twice (once more for last_engaged_at)
            FROM (SELECT {date("last_open")} AS open_at, {date("last_click")} AS click_at
                  LIMIT -1 OFFSET 0)
            WHERE true
            ON CONFLICT(email) DO UPDATE SET
                phone = coalesce(excluded.phone, phone),
                external_id = coalesce(excluded.external_id, external_id),
                klaviyo_id = coalesce(excluded.klaviyo_id, klaviyo_id),
                first_name = coalesce(excluded.first_name, first_name),
                last_name = coalesce(excluded.last_name, last_name),
                -- the new object has no nulls: an empty cell removes nothing; an unchanged
                -- object (re-importing the same export) is kept without parsing either
                attributes = CASE WHEN attributes = excluded.attributes THEN attributes
                                  ELSE json_patch(attributes, excluded.attributes) END,
                last_open_at = nullif(max(coalesce(excluded.last_open_at, ''),
                                          coalesce(last_open_at, '')), ''),
                last_click_at = nullif(max(coalesce(excluded.last_click_at, ''),
                                           coalesce(last_click_at, '')), ''),
                last_engaged_at = nullif(max(coalesce(excluded.last_engaged_at, ''),
                                             coalesce(last_engaged_at, '')), ''),
                updated_at = excluded.updated_at;
            {consent_upsert};
            {self._sms_sql(email, now_)}
            {touched}
        END
        """

    def _sms_sql(self, email: str, now_: str) -> str:
        """The row's SMS consent, when its cell says one, merged like the email's (sticky)."""
        if self.sms is None:
            return ""
        value = f"replace(upper(trim(new.c{self.sms})), ' ', '_')"
        status = (
            f"CASE {value} WHEN 'SUBSCRIBED' THEN 'subscribed' "
            "WHEN 'UNSUBSCRIBED' THEN 'unsubscribed' WHEN 'SUPPRESSED' THEN 'suppressed' "
            "WHEN 'NEVER_SUBSCRIBED' THEN 'never_subscribed' END"
        )
        upsert = consents.upsert_sql(
            f"SELECT id, 'sms', {status}, {now_}, 'import' FROM customers "
            f"WHERE email = {email} AND {status} IS NOT NULL",
            keep=consents.WITHDRAWN,
            unless=(consents.SUPPRESSED,),
        )
        return f"{upsert};"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class ImportCounts:
    """What an import did to the customers: created, and existing ones it touched."""

    new: int
    touched: int


@contextmanager
def bulk_settings(store: Store) -> Iterator[None]:
    """The connection's settings for a bulk load, restored after it."""
    conn = store.conn
    # A larger page cache keeps the email index's hot pages in memory during a big import.
    # 32 MB: the page cache is most of an import's memory, and at 128 MB a million-row
    # import peaked near 200 MB for a few percent of speed (issue 16: at most 100 MB).
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("PRAGMA temp_store = MEMORY")
    # `synchronous` stays as the store sets it: OFF would skip the fsyncs that order the
    # WAL checkpoint, and a power cut after the commit could then corrupt the store,
    # which the transaction's atomicity does not cover.
    # Foreign keys are not checked during the load (it halves the cost of the consent
    # writes): every customer id the import writes (consents, segment members) is read
    # from `customers` in the same statement, inside one write transaction, so none can
    # dangle. The pragma only takes effect outside a transaction; it is restored after.
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def bulk_import(
    store: Store,
    layout: ImportLayout,
    rows: Iterable[Sequence[str]],
    *,
    file: Path,
    segment: str,
    started_at: str,
    tally: Callable[[], tuple[int, int, int]],
) -> ImportCounts:
    """Load ``rows`` (see :class:`ImportLayout`), add the customers they name to ``segment``
    and record the import, in one transaction: an exception from ``rows`` (a CSV the reader
    cannot read) rolls it all back. ``tally`` gives (rows read, loaded, rejected) once
    ``rows`` is exhausted, for the imports record. Run inside :func:`bulk_settings`."""
    conn = store.conn
    with store.transaction():
        # the temporary objects are created inside the transaction: a rollback drops them
        before, max_id = conn.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM customers"
        ).fetchone()
        conn.execute("CREATE TEMP TABLE import_touched (id INTEGER PRIMARY KEY)")
        conn.execute(layout.view_sql())
        conn.execute(layout.trigger_sql(started_at, max_id))
        conn.executemany(layout.insert_sql(), rows)
        after = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        # the segment: the customers this import created and the existing ones it touched
        # (set-based, in id order: cheaper than a membership write per row)
        conn.execute(
            "INSERT OR IGNORE INTO segment_members (segment, customer_id, added_at) "
            "SELECT :segment, id, :now FROM customers WHERE id > :max_id "
            "UNION ALL SELECT :segment, id, :now FROM temp.import_touched",
            {"segment": segment, "now": started_at, "max_id": max_id},
        )
        touched = conn.execute("SELECT count(*) FROM temp.import_touched").fetchone()[0]
        rows_read, rows_loaded, rows_rejected = tally()
        conn.execute(
            "INSERT INTO imports (file, segment, started_at, finished_at, rows_read, "
            "rows_loaded, rows_rejected) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(file), segment, started_at, now_iso(), rows_read, rows_loaded, rows_rejected),
        )
        conn.execute("DROP TRIGGER temp.import_row")
        conn.execute("DROP VIEW temp.import_rows")
        conn.execute("DROP TABLE temp.import_touched")
    return ImportCounts(int(after) - int(before), int(touched))


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
