"""The customer import's load: validated rows → a staging table → set-based upserts.

The importer hands over only the columns the store normalises (never the whole CSV row), and
they reach a temporary staging table by the engine's fastest path: ``executemany`` into a plain
table on SQLite (a chunk of rows at a time, each upserted before the next is staged), ``COPY``
on PostgreSQL. A handful of set-based statements then upsert the customers, merge their
consents (sticky withdrawals), mark the existing customers the import touched and add everyone
to the segment — all in the caller's one transaction, so an interrupted import leaves nothing
half-written (a SQLite store's first import goes through a rollback journal, see
``_first_load_journal``).

Duplicate emails in one file merge row by row in file order (a later non-empty value wins; a
withdrawal sticks). SQLite's ``INSERT … SELECT … ON CONFLICT`` already applies the rows one by
one; PostgreSQL refuses to touch a row twice in one statement, so there the rows go in rounds:
every email's first row, then every second row, and so on (exports rarely have more than two).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from warmup.store import consents, customers
from warmup.store.backends import Backend
from warmup.store.bulk_import_postgres import EmptyStoreLoad, claim_empty, stage_rows
from warmup.store.customers import values_json_sql
from warmup.store.database import Store, now_iso
from warmup.store.import_times import AS_IMPORTED

#: The staging columns an import may fill, besides ``email`` (always) and
#: ``attribute_values`` (the free cells, see migration 009 and customers.SEPARATOR; last).
FIELDS = (
    "phone",
    "external_id",
    "klaviyo_id",
    "first_name",
    "last_name",
    "last_open",
    "last_click",
    "consent",
    "suppressions",
    "sms",
)

# A Klaviyo date (`2026-10-13 04:13:50`, or a date alone); anything else is stored as NULL.
# (SQLite's strftime also reads a time zone suffix or a Julian day number: not on PostgreSQL.)
_PG_DATE = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?)?$"
)


@dataclass(frozen=True)
class ImportCounts:
    """What an import did to the customers: created, and existing ones it touched."""

    new: int
    touched: int


@dataclass(frozen=True)
class StagingLayout:
    """The staging columns of one import: ``email``, the ``fields`` (of :data:`FIELDS`) the
    export has, then ``attribute_values`` (None when the export has no free columns). Each
    row passed to :func:`bulk_import` has them in this order. ``free`` names the export's free
    columns: an import gives the new ones their positions in ``attribute_names``."""

    fields: tuple[str, ...]
    free: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return ("email", *self.fields, "attribute_values")


class _Sql:
    """The import's statements in one engine's spelling. ``max_id`` is the greatest customer
    id before the import (0: an empty store): the customers above it are the import's own,
    whose times its statements leave out (store.import_times)."""

    def __init__(self, layout: StagingLayout, dialect: str, now: str, max_id: int = 0) -> None:
        self.layout = layout
        self.pg = dialect == "postgresql"
        self.now = "'" + now.replace("'", "''") + "'"
        self.max_id = int(max_id)
        self.as_imported = "'" + AS_IMPORTED + "'"

    def text(self, field: str) -> str:
        return f"nullif(trim(s.{field}), '')" if field in self.layout.fields else "NULL"

    def date(self, field: str) -> str:
        if field not in self.layout.fields:
            return "NULL"
        if not self.pg:
            return f"strftime('%Y-%m-%dT%H:%M:%S', nullif(trim(s.{field}), ''))"
        # "C": \d is an ASCII digit, as SQLite's strftime reads one (a linguistic collation's
        # \d matches Arabic-Indic digits too)
        value = f'trim(s.{field}) COLLATE "C"'
        # SQLite's strftime in PostgreSQL's terms, for the forms Klaviyo writes (it checks the
        # fields' ranges, not the length of the month)
        parsed = (
            f"CASE WHEN {value} ~ '{_PG_DATE}' THEN substr({value}, 1, 10) || 'T' || "
            f"CASE WHEN length({value}) >= 16 THEN substr({value}, 12, 5) || ':' || "
            f"coalesce(nullif(substr({value}, 18, 2), ''), '00') ELSE '00:00:00' END END"
        )
        # the importing process read the row's dates already unless it flagged them (its
        # reading of an ASCII cell is this expression's; see bulk_import_postgres.staging_row)
        return f"CASE WHEN s.dates_raw THEN {parsed} ELSE s.{field} END"

    def upper(self, value: str) -> str:
        """SQLite's upper(), which folds ASCII letters only: PostgreSQL's follows the database's
        collation, whose `ı` and `ſ` read `subscrıbed` and `ſuppressed` as consents."""
        return f'upper({value} COLLATE "C")' if self.pg else f"upper({value})"

    def later(self, new: str, old: str) -> str:
        """The later of two ISO times, either may be NULL."""
        if self.pg:
            return f"greatest({new}, {old})"
        return f"nullif(max(coalesce({new}, ''), coalesce({old}, '')), '')"

    def customers_upsert(self, where: str, *, conflict: bool = True) -> str:
        """The customers' upsert; without ``conflict`` a plain insert (of rows whose email is
        not stored yet: PostgreSQL's speculative insertion doubles an insert's cost)."""
        phone = "nullif(s.phone, '')" if "phone" in self.layout.fields else "NULL"
        engaged = self.later("open_at", "click_at")
        old, new = "customers.attribute_values", "excluded.attribute_values"
        dialect = "postgresql" if self.pg else "sqlite"
        old_json, new_json = (values_json_sql(v, dialect) for v in (old, new))
        if self.pg:
            # written as SQLite's json_group_array writes it (no space after a comma; json_agg's
            # text has one), so an export reads the same from either engine
            merged = (
                "(SELECT '[' || string_agg(to_json(coalesce(nullif(n.value, ''), o.value, ''))"
                "::text, ',' ORDER BY coalesce(n.k, o.k)) || ']' "
                f"FROM json_array_elements_text(({old_json})::json) "
                "WITH ORDINALITY o(value, k) FULL JOIN "
                f"json_array_elements_text(({new_json})::json) WITH ORDINALITY n(value, k) "
                "ON n.k = o.k)"
            )
            dates = (
                f"SELECT {self.date('last_open')} AS open_at, {self.date('last_click')} AS click_at"
            )
            source = f"FROM import_rows s, LATERAL ({dates}) d"
            order = "ORDER BY s.seq"
        else:
            merged = (
                "(SELECT json_group_array(v) FROM (SELECT coalesce(nullif(n.value, ''), "
                f"o.value, '') AS v FROM json_each({old_json}) o FULL JOIN json_each({new_json}) n "
                "ON n.key = o.key ORDER BY coalesce(n.key, o.key)))"
            )
            # OFFSET 0 keeps SQLite from inlining the subquery, which would parse each date
            # twice (once more for last_engaged_at)
            source = (
                f"FROM (SELECT s.*, {self.date('last_open')} AS open_at, "
                f"{self.date('last_click')} AS click_at FROM temp.import_rows s "
                "LIMIT -1 OFFSET 0) s"
            )
            order = ""
        latest = {
            column: self.later(f"excluded.{column}", f"customers.{column}")
            for column in ("last_open_at", "last_click_at", "last_engaged_at")
        }
        insert = f"""
            INSERT INTO customers (email, phone, external_id, klaviyo_id, first_name,
                last_name, attribute_values, last_open_at, last_click_at, last_engaged_at,
                created_at, updated_at)
            SELECT s.email, {phone}, {self.text("external_id")}, {self.text("klaviyo_id")},
                {self.text("first_name")}, {self.text("last_name")}, s.attribute_values, open_at,
                click_at, {engaged}, {self.as_imported}, {self.as_imported}
            {source}
            WHERE {where} {order}
        """
        if not conflict:
            return insert
        return f"""{insert}
            ON CONFLICT (email) DO UPDATE SET
                phone = coalesce(excluded.phone, customers.phone),
                external_id = coalesce(excluded.external_id, customers.external_id),
                klaviyo_id = coalesce(excluded.klaviyo_id, customers.klaviyo_id),
                first_name = coalesce(excluded.first_name, customers.first_name),
                last_name = coalesce(excluded.last_name, customers.last_name),
                -- cell by cell, an empty one removes nothing; an unchanged array
                -- (re-importing the same export) is kept without parsing either
                attribute_values = CASE WHEN {new} IS NULL THEN {old}
                    WHEN {old} IS NULL OR {old} = {new} THEN {new} ELSE {merged} END,
                last_open_at = {latest["last_open_at"]},
                last_click_at = {latest["last_click_at"]},
                last_engaged_at = {latest["last_engaged_at"]},
                updated_at = {self.now}
        """

    def email_consent(self, where: str, *, conflict: bool = True) -> str:
        consent = self.upper(f"trim(coalesce({self.text('consent')}, ''))")
        suppressions = self.text("suppressions")
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
        return self._consent(consents.EMAIL, status, where, conflict)

    def sms_consent(self, where: str, *, conflict: bool = True) -> str | None:
        """The row's SMS consent, when its cell says one, merged like the email's (sticky)."""
        if "sms" not in self.layout.fields:
            return None
        value = f"replace({self.upper('trim(s.sms)')}, ' ', '_')"
        status = (
            f"CASE {value} WHEN 'SUBSCRIBED' THEN 'subscribed' "
            "WHEN 'UNSUBSCRIBED' THEN 'unsubscribed' WHEN 'SUPPRESSED' THEN 'suppressed' "
            "WHEN 'NEVER_SUBSCRIBED' THEN 'never_subscribed' END"
        )
        return self._consent("sms", status, f"{where} AND {status} IS NOT NULL", conflict)

    def _consent(self, channel: str, status: str, where: str, conflict: bool) -> str:
        """The consents' upsert; without ``conflict`` a plain insert for the customers with
        no consent on ``channel`` yet (see :meth:`customers_upsert`)."""
        rows = "temp.import_rows" if not self.pg else "import_rows"
        order = "s.seq" if self.pg else "s.rowid"
        stored = (
            "EXISTS (SELECT 1 FROM consents x WHERE x.customer_id = c.id "
            f"AND x.channel = '{channel}')"
        )
        changed = f"CASE WHEN c.id > {self.max_id} THEN {self.as_imported} ELSE {self.now} END"
        select = (
            f"SELECT c.id, '{channel}', {status}, {changed}, 'import' "
            f"FROM {rows} s JOIN customers c ON c.email = s.email WHERE {where}"
        )
        if not conflict:
            return (
                "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
                f"{select} AND NOT {stored} ORDER BY {order}"
            )
        if self.pg:
            # A consent stored with this status already is one the upsert would leave as it
            # is: PostgreSQL's ON CONFLICT would still lock (and so write) its row first.
            select += (
                " AND NOT EXISTS (SELECT 1 FROM consents x WHERE x.customer_id = c.id "
                f"AND x.channel = '{channel}' AND x.status = {status})"
            )
        # An unsubscribe or suppression is sticky: an import can suppress, never resubscribe.
        return consents.upsert_sql(
            f"{select} ORDER BY {order}", keep=consents.WITHDRAWN, unless=(consents.SUPPRESSED,)
        )


@contextmanager
def bulk_settings(store: Store) -> Iterator[None]:
    """The connection's settings for a bulk load, restored after it."""
    if store.dialect != "sqlite":
        yield
        return
    conn = store.conn
    # A larger page cache keeps the email index's hot pages in memory during a big import.
    # 32 MB: the page cache is most of an import's memory, and at 128 MB a million-row
    # import peaked near 200 MB for a few percent of speed (issue 16: at most 100 MB).
    cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -32768")
    # The staging table holds one chunk of rows at a time (_SQLITE_CHUNK), in SQLite's
    # default temp_store.
    # `synchronous` stays as the store sets it: OFF would skip the fsyncs that order the
    # WAL checkpoint, and a power cut after the commit could then corrupt the store,
    # which the transaction's atomicity does not cover.
    # Foreign keys are not checked during the load (it halves the cost of the consent
    # writes): every customer id the import writes (consents, segment members) is read
    # from `customers` in the same statement, inside one write transaction, so none can
    # dangle. The pragma only takes effect outside a transaction; it is restored after.
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    journal = _first_load_journal(conn)
    try:
        yield
    finally:
        if journal is not None:
            _back_to_wal(conn, journal)
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")
        conn.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _first_load_journal(conn: sqlite3.Connection) -> int | None:
    """A store without customers yet (its first import) loads with a rollback journal instead
    of the write-ahead log: the pages the import appends then go to the file once, where WAL
    writes each twice (into the log, then into the file at the checkpoint) — half of a new
    store's import's system time. The journal keeps the transaction's guarantee: it records
    the store's pages as they were (appended pages need no copy, the file is cut back), and
    a killed import leaves it behind for the next opener to roll back. ``synchronous=FULL``
    meanwhile, as a rollback journal needs against a power cut. SQLite only changes the mode
    for the store's one connection: with another one open (a reader, `warmup serve`) the
    import keeps WAL. The previous ``synchronous``, to restore, when the mode changed."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal" or conn.execute("SELECT 1 FROM customers LIMIT 1").fetchone():
        return None
    synchronous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    try:
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError:  # another connection holds the log: keep it
        return None
    if str(mode).lower() != "delete":
        return None
    conn.execute("PRAGMA synchronous = FULL")
    return synchronous


def _back_to_wal(conn: sqlite3.Connection, synchronous: int) -> None:
    """The store's own journal again after a first load (see _first_load_journal)."""
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # refused when another connection opened the store meanwhile: every opener sets WAL
    # itself (store.backends.sqlite)
    with suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA journal_mode = WAL")


def bulk_import(
    store: Store,
    layout: StagingLayout,
    rows_for: Callable[[Mapping[str, int]], Iterable[tuple[str | None, ...]]],
    *,
    file: Path,
    segment: str,
    started_at: str,
    tally: Callable[[], tuple[int, int, int]],
) -> ImportCounts:
    """Load the rows ``rows_for`` gives (see :class:`StagingLayout`) once it has the free
    columns' positions (name → index in ``attribute_values``), add the customers they name to
    ``segment`` and record the import, in one transaction: an exception from the rows (a CSV
    the reader cannot read) rolls it all back. ``tally`` gives (rows read, loaded, rejected)
    once the rows are exhausted, for the imports record."""
    backend = store.backend
    with backend.transaction():
        # the temporary tables are created inside the transaction: a rollback drops them
        before, max_id = backend.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM customers"
        ).fetchone()
        sql = _Sql(layout, backend.dialect, started_at, max_id=int(max_id))
        positions = customers.add_attribute_names(backend, layout.free)
        # PostgreSQL writes a first import's rows straight into the tables (see
        # bulk_import_postgres: COPY into customers, keys dropped and rebuilt)
        direct = None
        if backend.dialect == "postgresql":
            if not before and claim_empty(backend):
                # its customers are all new: their times are the import's (import_times)
                direct = EmptyStoreLoad.begin(backend, AS_IMPORTED)
            rounds = _stage(backend, layout, rows_for(positions), direct)
            if max_id:
                # the existing customers this import touches (for the segment and the report)
                backend.execute(
                    "INSERT INTO import_touched (id) SELECT c.id FROM import_rows s "
                    "JOIN customers c ON c.email = s.email WHERE true ON CONFLICT DO NOTHING"
                )
            if direct is not None and rounds:
                # the consents just loaded have no statistics: the planner guessed 0.5% of
                # them per channel and hashed all of them for the held-back rows' few
                # lookups (1M: 0.29 s; the sample costs 0.09)
                backend.execute("ANALYZE consents (customer_id, channel, status)")
            for where in rounds:
                _pg_round(backend, sql, where)
        else:
            _sqlite_load(backend, sql, rows_for(positions), int(max_id))
        if direct is not None:
            after = direct.customers()
        else:
            after = backend.execute("SELECT count(*) FROM customers").fetchone()[0]
        # the segment: the customers this import created and the existing ones it touched
        # (set-based, in id order: cheaper than a membership write per row)
        # The ids this import created cannot be members yet: a plain insert, which on
        # PostgreSQL costs half of one that checks for a conflict first.
        if direct is not None:
            direct.add_members(segment)
        else:
            backend.execute(
                "INSERT INTO segment_members (segment, customer_id, added_at) "
                "SELECT ?, id, ? FROM customers WHERE id > ?",
                (segment, AS_IMPORTED, max_id),
            )
        if max_id:
            backend.execute(
                "INSERT INTO segment_members (segment, customer_id, added_at) "
                "SELECT ?, id, ? FROM import_touched WHERE true ON CONFLICT DO NOTHING",
                (segment, started_at),
            )
        if direct is not None:
            direct.finish()
        touched = backend.execute("SELECT count(*) FROM import_touched").fetchone()[0]
        rows_read, rows_loaded, rows_rejected = tally()
        import_id = backend.execute(
            "INSERT INTO imports (file, segment, started_at, finished_at, rows_read, "
            "rows_loaded, rows_rejected) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (str(file), segment, started_at, now_iso(), rows_read, rows_loaded, rows_rejected),
        ).fetchone()[0]
        if after > before:
            # the customers this import created, whose times it left out (import_times)
            backend.execute(
                "INSERT INTO import_customers (first_id, import_id) VALUES (?, ?)",
                (int(max_id) + 1, import_id),
            )
        backend.execute("DROP TABLE import_rows")
        backend.execute("DROP TABLE import_touched")
        if backend.dialect == "postgresql":
            backend.execute("DROP TABLE import_later")
    return ImportCounts(int(after) - int(before), int(touched))


#: Rows staged at a time on SQLite: enough that a round's statements cost little beside its
#: rows, few enough that the staging table stays in the page cache.
_SQLITE_CHUNK = 5000


def _sqlite_load(
    backend: Backend, sql: _Sql, rows: Iterable[tuple[str | None, ...]], max_id: int
) -> None:
    """SQLite: the rows go through the staging table a chunk at a time, each chunk upserted
    (customers, then their consents, in file order) and then emptied. A whole export staged at
    once spilled to a temporary file (a 200k export's staging rows take 66 MB) and cost a
    write, a read and a drop of every page."""
    backend.execute("CREATE TEMP TABLE import_touched (id INTEGER PRIMARY KEY)")
    columns = ", ".join(f"{column} TEXT" for column in sql.layout.columns)
    backend.execute(f"CREATE TEMP TABLE import_rows ({columns})")
    statements = []
    if max_id:
        # the existing customers this import touches (for the segment and the report); the
        # ids it creates are above max_id, so it may run after the chunk's upsert
        statements.append(
            "INSERT INTO import_touched (id) SELECT c.id FROM temp.import_rows s "
            f"JOIN customers c ON c.email = s.email WHERE c.id <= {max_id} "
            "ON CONFLICT DO NOTHING"
        )
    statements.append(sql.customers_upsert("true"))
    statements.append(sql.email_consent("true"))
    sms = sql.sms_consent("true")
    if sms is not None:
        statements.append(sms)
    # emptied without a WHERE: SQLite frees the table's pages at once, and its rowids (the
    # consents' file order) start again at 1
    statements.append("DELETE FROM temp.import_rows")
    marks = ", ".join("?" for _ in sql.layout.columns)
    insert = f"INSERT INTO temp.import_rows ({', '.join(sql.layout.columns)}) VALUES ({marks})"
    rows = iter(rows)
    # each chunk streams from the reader (one row in hand says there is another chunk): no
    # list of rows is held in memory
    for first in rows:
        backend.executemany(insert, chain((first,), islice(rows, _SQLITE_CHUNK - 1)))
        for statement in statements:
            backend.execute(statement)


def _pg_round(backend: Backend, sql: _Sql, where: str) -> None:
    """One round on PostgreSQL: upserts for what is stored already, plain inserts for the
    rest (in that order, so that the inserts find nothing in their way)."""
    known = "EXISTS (SELECT 1 FROM customers x WHERE x.email = s.email)"
    backend.execute(sql.customers_upsert(f"{where} AND {known}"))
    backend.execute(sql.customers_upsert(f"{where} AND NOT {known}", conflict=False))
    for conflict in (True, False):
        backend.execute(sql.email_consent(where, conflict=conflict))
        sms = sql.sms_consent(where, conflict=conflict)
        if sms is not None:
            backend.execute(sms)


def _stage(
    backend: Backend,
    layout: StagingLayout,
    rows: Iterable[tuple[str | None, ...]],
    direct: EmptyStoreLoad | None = None,
) -> list[str]:
    """Fill PostgreSQL's staging table (with the rows ``direct`` leaves, when given); the
    WHERE clauses of the upsert's rounds (see the module)."""
    columns = ", ".join(f"{column} TEXT" for column in layout.columns)
    backend.execute("CREATE TEMP TABLE import_touched (id BIGINT PRIMARY KEY)")
    # the sorts by file order stay in memory (the server's default is 4 MB)
    backend.execute("SET LOCAL work_mem = '128MB'")
    # The tables were just written, so their pages are in memory: at the default random page
    # cost (4, a disk's seek) the planner hashed all of a million-row customers table to look
    # up the few thousand rows a first import holds back (1M: 1.8 s of the server's 7.4)
    backend.execute("SET LOCAL random_page_cost = 1.1")
    backend.execute(
        f"CREATE TEMP TABLE import_rows (seq BIGINT GENERATED ALWAYS AS IDENTITY, {columns}, "
        "dates_raw BOOLEAN NOT NULL)"
    )
    if direct is not None:
        direct.load(layout.fields, rows, layout.columns)
    else:
        stage_rows(backend, layout.fields, rows, layout.columns)
    # An email's later rows go in later rounds (most exports have no duplicates at all).
    backend.execute(
        "CREATE TEMP TABLE import_later AS SELECT seq, round FROM (SELECT seq, row_number() "
        "OVER (PARTITION BY email ORDER BY seq) AS round FROM import_rows WHERE email IN "
        "(SELECT email FROM import_rows GROUP BY email HAVING count(*) > 1)) r WHERE round > 1"
    )
    # the joins and rounds read the email and seq columns: statistics on the others (the
    # wide attribute_values above all) would cost more than the plans gain
    backend.execute("ANALYZE import_rows (seq, email)")
    backend.execute("ANALYZE import_later")
    last = backend.execute("SELECT coalesce(max(round), 1) FROM import_later").fetchone()[0]
    return [
        "NOT EXISTS (SELECT 1 FROM import_later l WHERE l.seq = s.seq)",
        *(
            f"EXISTS (SELECT 1 FROM import_later l WHERE l.seq = s.seq AND l.round = {n})"
            for n in range(2, int(last) + 1)
        ),
    ]
