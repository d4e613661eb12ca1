"""PostgreSQL's fast path for an import into a store without customers (the first import).

The general path (:mod:`warmup.store.bulk_import`) stages every row and upserts from there:
on PostgreSQL that costs a row's worth of server work four times over (the staging COPY, the
date expressions, an insert that reads the staging table, and a foreign key check per consent
and segment row, each an index probe with a row lock). When the store has no customers yet,
nothing can conflict, so this path writes what the upserts would have written directly:

- this process computes each customer's row (the same rules as the SQL, see :func:`_converter`)
  and COPYs it in binary straight into ``customers``, with ids it assigns in file order (the
  identity sequence is moved past them afterwards);
- each customer's email (and SMS) consent is kept as one byte per customer and written by one
  set-based insert; the segment's members are one insert from ``customers``;
- the foreign keys of ``consents`` and ``segment_members`` are dropped for the load and added
  back after it: adding one checks the whole table with one join instead of a probe per row;
  likewise the unique key on the customers' email and the primary keys of ``consents`` and
  ``segment_members`` are each built once, by one sort, after their rows are in.

A row this path cannot settle on its own goes the general way instead, into the staging table
and the upsert rounds, after the direct rows: an email's later rows (a duplicate — recognised
by a bit per email hash, so a rare hash collision sends a first row that way too, which is
only slower) and a row whose consent or date cells are not ASCII (the server's SQL decides
them, as for a later import's rows).

Everything happens in the import's one transaction; DDL is transactional on PostgreSQL, so a
killed import leaves the store, constraints included, as it was. What concurrent processes see:
the import holds ``ACCESS EXCLUSIVE`` locks on ``customers``, ``consents`` and
``segment_members`` until it commits, so a ``serve`` replica's request that reads them waits
for the import (seconds; a store without customers has no unsubscribe links out yet).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from warmup.store.backends import Backend

Row = tuple[str | None, ...]

# The customer columns this path writes; the rest keep their defaults, as with the upserts.
_CUSTOMER_COLUMNS = (
    "id",
    "email",
    "phone",
    "external_id",
    "klaviyo_id",
    "first_name",
    "last_name",
    "attribute_values",
    "last_open_at",
    "last_click_at",
    "last_engaged_at",
    "created_at",
    "updated_at",
)
_CUSTOMER_TYPES = ("int8",) + ("text",) * (len(_CUSTOMER_COLUMNS) - 1)

# Consent statuses as one byte per customer (0: no consent on that channel).
_STATUSES = ("subscribed", "unsubscribed", "suppressed", "never_subscribed")
_CODE = {status: i + 1 for i, status in enumerate(_STATUSES)}
_SMS = {
    "SUBSCRIBED": _CODE["subscribed"],
    "UNSUBSCRIBED": _CODE["unsubscribed"],
    "SUPPRESSED": _CODE["suppressed"],
    "NEVER_SUBSCRIBED": _CODE["never_subscribed"],
}
_KEPT = ("['UNSUBSCRIBE']", '["UNSUBSCRIBE"]', "UNSUBSCRIBE")

# bulk_import._PG_DATE for ASCII text (the only text this path parses); fullmatch: PostgreSQL's
# `$` is the end of the text, never before a final newline.
_DATE = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?)?"
).fullmatch

# 2**27 bits (16 MB): a million emails set under 1 % of them, so under 1 % of a million-row
# export's first rows take the staging path by a collision.
_SEEN_BITS = 27
# the rows held in memory for the staging table before they are flushed to it
_LATER_BATCH = 10_000


class _Undecided(Exception):
    """A row this process leaves to the server's SQL (see the module docstring)."""


def _date(value: str) -> str | None:
    """bulk_import's PostgreSQL date expression, for one cell."""
    # most cells are Klaviyo's own `2026-10-13 04:13:50`: matched as they are, first
    if _DATE(value) is None:
        value = value.strip(" ")
        if not value.isascii():
            raise _Undecided
        if _DATE(value) is None:
            return None
    if len(value) == 19:
        return value[:10] + "T" + value[11:]
    if len(value) >= 16:
        return f"{value[:10]}T{value[11:16]}:{value[17:19] or '00'}"
    return f"{value[:10]}T00:00:00"


def _upper(value: str) -> str:
    value = value.strip(" ")
    if not value.isascii():
        raise _Undecided
    return value.upper()


def _converter(
    fields: tuple[str, ...], now: str
) -> Callable[[int, Row], tuple[tuple[object, ...], int, int]]:
    """A staging row (email, the layout's ``fields``, attribute_values) → its customers row
    and consent codes: the rules of ``bulk_import._Sql`` for a customer stored the first time.
    A field the layout lacks reads as the None after the row's last cell."""
    # imported here: bulk_import imports this module (the staging fields are its to define)
    from warmup.store.bulk_import import FIELDS

    index = {name: i + 1 for i, name in enumerate(fields)}
    missing = len(fields) + 2
    pick = itemgetter(*(index.get(name, missing) for name in FIELDS))
    has_sms = "sms" in index
    pad: Row = (None,)
    subscribed, unsubscribed = _CODE["subscribed"], _CODE["unsubscribed"]
    suppressed, never = _CODE["suppressed"], _CODE["never_subscribed"]
    consent_of: dict[str, str] = {}

    def convert(customer_id: int, row: Row) -> tuple[tuple[object, ...], int, int]:
        phone, external, klaviyo, first, last, opened, clicked, said, listed, sms = pick(row + pad)
        open_at = _date(opened) if opened else None
        click_at = _date(clicked) if clicked else None
        if open_at is None or click_at is None:
            engaged = open_at or click_at
        else:
            engaged = max(open_at, click_at)
        if said:
            # a consent cell holds one of a few values: each is normalised once
            known = consent_of.get(said)
            if known is None:
                known = consent_of[said] = _upper(said)
            said = known
        else:
            said = ""
        listed = listed.strip(" ") if listed else None
        if listed and listed != "[]" and listed != "{}":
            email = unsubscribed if said == "UNSUBSCRIBED" and listed in _KEPT else suppressed
        elif said == "SUBSCRIBED":
            email = subscribed
        elif said == "UNSUBSCRIBED":
            email = unsubscribed
        else:
            email = never
        sms_code = _SMS.get(_upper(sms or "").replace(" ", "_"), 0) if has_sms else 0
        customer = (
            customer_id,
            row[0],
            phone or None,
            external.strip(" ") or None if external else None,
            klaviyo.strip(" ") or None if klaviyo else None,
            first.strip(" ") or None if first else None,
            last.strip(" ") or None if last else None,
            row[-1],
            open_at,
            click_at,
            engaged,
            now,
            now,
        )
        return customer, email, sms_code

    return convert


def staging_row(fields: tuple[str, ...]) -> Callable[[Row], list[object]]:
    """A staging row → the row PostgreSQL's staging table takes: its date cells read here
    (the server's regular expressions cost more than the whole row's COPY) and a last cell,
    ``dates_raw``, true when a date cell is not ASCII and the server reads them instead."""
    dates = [i + 1 for i, name in enumerate(fields) if name in ("last_open", "last_click")]

    def stage(row: Row) -> list[object]:
        cells: list[object] = list(row)
        try:
            for i in dates:
                cell = row[i]
                cells[i] = _date(cell) if cell else None
        except _Undecided:
            cells = [*row, True]
        else:
            cells.append(False)
        return cells

    return stage


def stage_rows(
    backend: Backend, fields: tuple[str, ...], rows: Iterable[Row], columns: tuple[str, ...]
) -> None:
    """COPY ``rows`` into the staging table ``import_rows`` (see :func:`staging_row`)."""
    stage = staging_row(fields)
    with (
        backend.conn.cursor() as cursor,
        cursor.copy(f"COPY import_rows ({', '.join(columns)}, dates_raw) FROM STDIN") as copy,
    ):
        write = copy.write_row
        for row in rows:
            write(stage(row))


def claim_empty(backend: Backend) -> bool:
    """True when the store has no customers, with the locks the fast path needs taken (all
    three up front, so that no lock is upgraded later); False, taking nothing, otherwise."""
    if backend.execute("SELECT EXISTS (SELECT 1 FROM customers)").fetchone()[0]:
        return False
    backend.execute("LOCK TABLE customers, consents, segment_members IN ACCESS EXCLUSIVE MODE")
    # checked again under the lock: a writer outside the writer lock would be a bug elsewhere,
    # but the fast path's correctness must not depend on it
    return not backend.execute("SELECT EXISTS (SELECT 1 FROM customers)").fetchone()[0]


def _foreign_keys(backend: Backend) -> list[tuple[str, str, str]]:
    """The foreign keys of the tables this path fills: (table, name, definition)."""
    rows = backend.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid IN ('consents'::regclass, "
        "'segment_members'::regclass) ORDER BY 1, 2"
    ).fetchall()
    return [(str(table), str(name), str(definition)) for table, name, definition in rows]


def _keys(backend: Backend, table: str, kind: str) -> list[tuple[str, str, str]]:
    """The constraints of ``kind`` (``u``: unique, ``p``: primary key) on ``table``: (table,
    name, definition). Built once after the load, by one sort, a key costs less than one kept
    up to date row by row (200k consents: 0.31 s inserted with their key, 0.14 + 0.08 s
    without it and then built); any other index on the table is left alone."""
    rows = backend.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = ? AND conrelid = ?::regclass ORDER BY 1",
        (kind, table),
    ).fetchall()
    return [(table, str(name), str(definition)) for name, definition in rows]


@dataclass
class EmptyStoreLoad:
    """The direct part of an import into a store without customers (see the module)."""

    backend: Backend
    now: str
    foreign_keys: list[tuple[str, str, str]]
    #: the keys the upsert rounds' ON CONFLICT needs (customers' email, consents' primary
    #: key), built after the COPY; then segment_members' primary key, built at the end
    unique_keys: list[tuple[str, str, str]]
    member_keys: list[tuple[str, str, str]]
    #: the ids the COPY gave: first_id up to and with last_id
    first_id: int = 1
    last_id: int = 0
    #: the customers' identity sequence
    sequence: str = ""

    @classmethod
    def begin(cls, backend: Backend, now: str) -> EmptyStoreLoad:
        """Drop the foreign keys and customers' unique keys for the load (after
        :func:`claim_empty`); ``now`` is what the rows hold for the import's time (created_at,
        updated_at, the consents' changed_at and the members' added_at): the caller passes
        ``import_times.AS_IMPORTED``, read back as the import's start."""
        # The server's parallel workers would only compete for this machine's cores (and
        # their CPU would not show as this backend's); an index build's sort stays in memory.
        backend.execute("SET LOCAL max_parallel_maintenance_workers = 0")
        backend.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        backend.execute("SET LOCAL maintenance_work_mem = '128MB'")
        foreign_keys = _foreign_keys(backend)
        unique_keys = _keys(backend, "customers", "u") + _keys(backend, "consents", "p")
        member_keys = _keys(backend, "segment_members", "p")
        # the foreign keys first: they depend on nothing dropped here, but nothing may
        # depend on a key dropped after them (none references consents or segment_members)
        for table, name, _ in foreign_keys + unique_keys + member_keys:
            backend.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        return cls(backend, now, foreign_keys, unique_keys, member_keys)

    def load(
        self, fields: tuple[str, ...], rows: Iterable[Row], staging_columns: tuple[str, ...]
    ) -> None:
        """COPY the rows this path settles into ``customers`` and write their consents; the
        others go to the staging table ``import_rows`` (created by the caller)."""
        backend, now = self.backend, self.now
        conn = backend.conn
        seq = backend.execute("SELECT pg_get_serial_sequence('customers', 'id')").fetchone()[0]
        last, called = backend.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
        first_id = int(last) + 1 if called else int(last)
        convert = _converter(fields, now)
        emails, sms = bytearray(), bytearray()
        later: list[Row] = []
        seen = bytearray(1 << (_SEEN_BITS - 3))
        mask = (1 << _SEEN_BITS) - 1
        crc32 = zlib.crc32
        copy_customers = (
            f"COPY customers ({', '.join(_CUSTOMER_COLUMNS)}) FROM STDIN (FORMAT binary)"
        )

        def flush_later() -> None:
            stage_rows(backend, fields, later, staging_columns)
            later.clear()

        rows_iter: Iterator[Row] = iter(rows)
        next_id = first_id
        done = False
        while not done:
            # one COPY into customers until the held-back rows fill a batch (a connection
            # runs one COPY at a time), then those go to the staging table. The buffers are
            # sent from this thread: the server stores rows while this process reads on
            # anyway (psycopg waits for the socket once per 1 MB it hands over), and psycopg's
            # writer thread (QueuedLibpqWriter) cost 0.13–0.2 CPU s at 200k in handing the
            # interpreter lock over for each 32 kB buffer, for no wall time on a busy machine
            with conn.cursor() as cursor, cursor.copy(copy_customers) as copy:
                copy.set_types(_CUSTOMER_TYPES)
                write = copy.write_row
                for row in rows_iter:
                    bit = crc32(row[0].encode()) & mask  # type: ignore[union-attr]
                    byte, flag = bit >> 3, 1 << (bit & 7)
                    if seen[byte] & flag:
                        later.append(row)
                        if len(later) >= _LATER_BATCH:
                            break
                        continue
                    seen[byte] |= flag
                    try:
                        customer, email, sms_code = convert(next_id, row)
                    except _Undecided:
                        later.append(row)
                        if len(later) >= _LATER_BATCH:
                            break
                        continue
                    write(customer)
                    emails.append(email)
                    sms.append(sms_code)
                    next_id += 1
                else:
                    done = True
            if later:
                flush_later()
        count = next_id - first_id
        self.first_id, self.last_id, self.sequence = first_id, next_id - 1, str(seq)
        if count:
            backend.execute(f"SELECT setval('{seq}', ?)", (next_id - 1,))
        # one set-based insert per channel: byte i is customer first_id + i
        statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in _STATUSES) + "]"
        for channel, codes in (("email", emails), ("sms", sms)):
            if not any(codes):
                continue
            backend.execute(
                "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
                f"SELECT ? + i, ?, ({statuses})[code], ?, 'import' FROM (SELECT i, "
                "get_byte(?, i) AS code FROM generate_series(0, ? - 1) i) c WHERE code > 0",
                (first_id, channel, now, bytes(codes), count),
            )
        # the upsert rounds of the held-back rows need the keys (their ON CONFLICT)
        self._add(self.unique_keys)

    def _add(self, constraints: list[tuple[str, str, str]]) -> None:
        for table, name, definition in constraints:
            self.backend.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')

    def add_members(self, segment: str) -> None:
        """Add the import's customers to ``segment``: the COPY's by their ids, the upsert
        rounds' new ones (ids past them, from the sequence) by looking each id up — neither
        reads the whole customers table (at a million rows, larger than the server's cache)."""
        backend = self.backend
        backend.execute(
            "INSERT INTO segment_members (segment, customer_id, added_at) "
            "SELECT ?, i, ? FROM generate_series(?::bigint, ?) i",
            (segment, self.now, self.first_id, self.last_id),
        )
        if not self.sequence:
            return
        backend.execute(
            "INSERT INTO segment_members (segment, customer_id, added_at) "
            "SELECT ?, c.id, ? FROM generate_series(?::bigint, "
            f"(SELECT last_value FROM {self.sequence})) i JOIN customers c ON c.id = i",
            (segment, self.now, self.last_id + 1),
        )

    def customers(self) -> int:
        """How many customers the store has after the load, without ``count(*)`` reading the
        whole table once more (1M rows: larger than the server's cache): the COPY's, and the
        upsert rounds' new ones, whose ids come after them (counted: an upsert may skip
        sequence values)."""
        later = self.backend.execute(
            "SELECT count(*) FROM customers WHERE id > ?", (self.last_id,)
        ).fetchone()[0]
        return self.last_id - self.first_id + 1 + int(later)

    def finish(self) -> None:
        """Add the segment members' key and the foreign keys back: each foreign key checks
        its table with one join."""
        self._add(self.member_keys)
        # Both sides have their keys by now: a merge join over them checks a million rows in
        # 0.34–0.47 s, where the planner's hash of all customers took 0.52–0.63 s
        hashjoin = self.backend.execute("SELECT current_setting('enable_hashjoin')").fetchone()[0]
        self.backend.execute("SET LOCAL enable_hashjoin = off")
        self._add(self.foreign_keys)
        # as it was: a server or role may have its own setting
        self.backend.execute("SELECT set_config('enable_hashjoin', ?, true)", (hashjoin,))
