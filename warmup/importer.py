"""Load a Klaviyo list/segment export (or any CSV with a column mapping) into the store.

Speed matters (exports run to millions of rows), so only emails and phones are validated in
Python; customers are upserted with ``executemany`` (SQLite normalises the other columns), and
consents and segment memberships are merged from a small staging table with set-based
statements — all in one transaction, so an interrupted import leaves nothing half-written.

Rules:
- email is the hard id: trimmed and lowercased; rows with an invalid email are rejected;
- a phone that is present but not E.164 rejects the row (Klaviyo would refuse it);
- duplicate emails merge (a later non-empty value wins); re-importing is an upsert;
- consent never moves back from unsubscribed/suppressed to subscribed through an import:
  "nobody who unsubscribed anywhere may be mailed again".
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

from warmup.errors import CsvImportError
from warmup.plan.loader import LoadedPlan
from warmup.plan.models import CsvMapping
from warmup.store import Store, now_iso, open_store

_EMAIL = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")
MAX_REJECTS_SHOWN = 10

Progress = Callable[[int], None]


@dataclass
class Reject:
    line: int
    reason: str
    value: str


@dataclass
class ImportReport:
    file: Path
    segment: str
    rows_read: int = 0
    rows_loaded: int = 0
    customers_new: int = 0
    customers_updated: int = 0
    duplicates_merged: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_file: Path | None = None

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)

    def summary(self) -> str:
        lines = [
            f"imported {self.file} into segment {self.segment!r}",
            f"  rows read         {self.rows_read:,}",
            f"  rows loaded       {self.rows_loaded:,}",
            f"  new customers     {self.customers_new:,}",
            f"  updated customers {self.customers_updated:,}",
            f"  duplicates merged {self.duplicates_merged:,}",
            f"  rows rejected     {self.rows_rejected:,}",
        ]
        if self.rejects:
            reasons = Counter(r.reason for r in self.rejects)
            for reason, count in reasons.most_common():
                lines.append(f"    {count:,} × {reason}")
            for reject in self.rejects[:MAX_REJECTS_SHOWN]:
                lines.append(f"  {self.file}:{reject.line}: {reject.reason}: {reject.value!r}")
            if self.rows_rejected > MAX_REJECTS_SHOWN:
                lines.append(f"  … {self.rows_rejected - MAX_REJECTS_SHOWN:,} more")
            if self.rejects_file:
                lines.append(f"  full list: {self.rejects_file}")
        return "\n".join(lines)


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def is_valid_email(email: str) -> bool:
    return (
        len(email) <= 254 and _EMAIL.match(email) is not None and len(email.partition("@")[0]) <= 64
    )


def normalize_phone(raw: str) -> str | None:
    """``+420 777 123 456`` → ``+420777123456``; ``None`` when not E.164."""
    phone = raw.strip().translate(_PHONE_PUNCTUATION)
    return phone if _E164.match(phone) else None


class _Columns:
    """Header names → indexes (matched case-insensitively), and the staging table they fill.

    Only the email and the phone are validated in Python; every other column is staged raw and
    normalised by SQLite inside the upsert statement (dates, the JSON of extra columns), which
    is what keeps a million-row import within a small factor of a plain loader.
    """

    RAW_FIELDS = (
        "external_id",
        "klaviyo_id",
        "first_name",
        "last_name",
        "last_open",
        "last_click",
        "consent",
        "suppressions",
    )

    def __init__(self, header: list[str], mapping: CsvMapping, file: Path) -> None:
        names = [name.strip().lstrip("\ufeff") for name in header]
        folded = {name.lower(): i for i, name in enumerate(names)}

        def find(name: str | None) -> int | None:
            return None if name is None else folded.get(name.strip().lower())

        email = find(mapping.email)
        if email is None:
            email = find("Email Address")
        if email is None:
            raise CsvImportError(
                f"no `{mapping.email}` column (found: {', '.join(names[:12])}"
                f"{'…' if len(names) > 12 else ''})",
                file=file,
                line=1,
                hint="name the email column in the plan under import.columns.email",
            )
        self.email = email
        self.phone = find(mapping.phone)
        self.raw: dict[str, int] = {}
        for field_name in self.RAW_FIELDS:
            index = find(getattr(mapping, field_name))
            if index is not None:
                self.raw[field_name] = index
        known = {email, self.phone, *self.raw.values()}
        self.extra = [(i, names[i]) for i in range(len(names)) if i not in known]
        self.width = len(names)
        self.staged = [*self.raw.values(), *(i for i, _ in self.extra)]

    def upsert_sql(self) -> str:
        """One row's upsert into customers; parameters ?1 email, ?2 phone, then the staged
        raw columns in order. Empty cells are NULL; a later non-empty value wins."""
        position = {name: n + 3 for n, name in enumerate(self.raw)}

        def text(field_name: str) -> str:
            return (
                f"nullif(trim(?{position[field_name]}), '')" if field_name in position else "NULL"
            )

        def date(field_name: str) -> str:
            # Klaviyo exports write `2026-10-13 04:13:50`; anything unparseable becomes NULL
            return (
                f"strftime('%Y-%m-%dT%H:%M:%S', nullif(trim(?{position[field_name]}), ''))"
                if field_name in position
                else "NULL"
            )

        first_extra = len(self.raw) + 3
        if self.extra:
            pairs = ", ".join(
                f"{_sql_string(name)}, nullif(?{first_extra + n}, '')"
                for n, (_, name) in enumerate(self.extra)
            )
            attributes = f"json_object({pairs})"
        else:
            attributes = "'{}'"
        engaged = (
            f"nullif(max(coalesce({date('last_open')}, ''), "
            f"coalesce({date('last_click')}, '')), '')"
        )
        return f"""
        INSERT INTO customers (email, phone, external_id, klaviyo_id, first_name, last_name,
            attributes, last_open_at, last_click_at, last_engaged_at, created_at, updated_at)
        VALUES (?1, ?2, {text("external_id")}, {text("klaviyo_id")}, {text("first_name")},
            {text("last_name")}, {attributes}, {date("last_open")}, {date("last_click")},
            {engaged}, :now, :now)
        ON CONFLICT(email) DO UPDATE SET
            phone = coalesce(excluded.phone, phone),
            external_id = coalesce(excluded.external_id, external_id),
            klaviyo_id = coalesce(excluded.klaviyo_id, klaviyo_id),
            first_name = coalesce(excluded.first_name, first_name),
            last_name = coalesce(excluded.last_name, last_name),
            -- patching {{}} first drops the new row's nulls: an empty cell removes nothing
            attributes = json_patch(attributes, json_patch('{{}}', excluded.attributes)),
            last_open_at = nullif(max(coalesce(excluded.last_open_at, ''),
                                      coalesce(last_open_at, '')), ''),
            last_click_at = nullif(max(coalesce(excluded.last_click_at, ''),
                                       coalesce(last_click_at, '')), ''),
            last_engaged_at = nullif(max(coalesce(excluded.last_engaged_at, ''),
                                         coalesce(last_engaged_at, '')), ''),
            updated_at = excluded.updated_at
        """.replace(":now", "?" + str(first_extra + len(self.extra)))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def import_csv(
    loaded: LoadedPlan,
    csv_path: Path | str,
    *,
    segment: str | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
) -> ImportReport:
    """Import ``csv_path`` into the plan's store and its segment; see the module docstring."""
    own_store = store is None
    store = store or open_store(loaded.store_path)
    try:
        return _import(
            store,
            Path(csv_path),
            loaded.plan.import_.columns,
            segment or loaded.plan.import_.segment,
            progress,
        )
    finally:
        if own_store:
            store.close()


def _import(
    store: Store, path: Path, mapping: CsvMapping, segment: str, progress: Progress | None
) -> ImportReport:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CsvImportError(
            "file not found", file=path, hint="check the path of the export"
        ) from None
    except OSError as exc:
        raise CsvImportError(f"cannot read: {exc}", file=path) from None
    report = ImportReport(file=path, segment=segment)
    now = now_iso()
    conn = store.conn
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvImportError(
                "the file is empty",
                file=path,
                line=1,
                hint="export the segment again with its header row",
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvImportError(f"not a readable CSV: {exc}", file=path, line=1) from None
        cols = _Columns(header, mapping, path)
        # a large page cache keeps the email index's B-tree in memory for a big import
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
        with store.transaction():
            conn.execute("DROP TABLE IF EXISTS temp.staging")
            conn.execute("CREATE TEMP TABLE staging (email TEXT, consent TEXT, suppressions TEXT)")
            before = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            try:
                _stage(conn, reader, cols, report, progress, handle, now)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise CsvImportError(
                    f"unreadable CSV: {exc}",
                    file=path,
                    line=reader.line_num,
                    hint="save the file as UTF-8 CSV",
                ) from None
            staged_distinct = conn.execute("SELECT count(DISTINCT email) FROM staging").fetchone()[
                0
            ]
            report.duplicates_merged = report.rows_loaded - staged_distinct
            # customers were upserted while staging: count the ones that existed before
            _merge(conn, segment, now)
            after = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            report.customers_new = after - before
            report.customers_updated = staged_distinct - report.customers_new
            conn.execute(
                "INSERT INTO imports (file, segment, started_at, finished_at, rows_read, "
                "rows_loaded, rows_rejected) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    str(path),
                    segment,
                    now,
                    now_iso(),
                    report.rows_read,
                    report.rows_loaded,
                    report.rows_rejected,
                ),
            )
            conn.execute("DROP TABLE temp.staging")
    if report.rejects:
        report.rejects_file = _write_rejects(store.path, path, report.rejects)
    return report


_BATCH = 20_000


def _stage(
    conn: sqlite3.Connection,
    reader: CsvReader,
    cols: _Columns,
    report: ImportReport,
    progress: Progress | None,
    handle: TextIO,
    now: str,
) -> None:
    """Validate rows, upsert customers batch by batch, stage (email, consent) for the merge."""
    upsert = cols.upsert_sql()
    stage = "INSERT INTO staging VALUES (?, ?, ?)"
    customers: list[tuple[str | None, ...]] = []
    consents: list[tuple[str | None, ...]] = []
    rejects = report.rejects
    email_i, phone_i, width = cols.email, cols.phone, cols.width
    consent_i, supp_i = cols.raw.get("consent"), cols.raw.get("suppressions")
    staged = cols.staged
    pick = (
        itemgetter(*staged)
        if len(staged) > 1
        else (lambda row: (row[staged[0]],))
        if staged
        else (lambda row: ())
    )
    match_email = _EMAIL.match
    rows_read = 0

    def flush() -> None:
        conn.executemany(upsert, customers)
        conn.executemany(stage, consents)
        report.rows_loaded += len(customers)
        customers.clear()
        consents.clear()
        if progress is not None:
            progress(handle.buffer.tell())

    for row in reader:
        rows_read += 1
        if len(row) != width:
            if not any(row):
                continue  # a blank line
            if len(row) < width:
                rejects.append(
                    Reject(
                        reader.line_num,
                        f"row has {len(row)} columns, the header {width}",
                        ",".join(row)[:200],
                    )
                )
                continue
        email = row[email_i].strip().lower()
        if match_email(email) is None or len(email) > 254 or email.index("@") > 64:
            rejects.append(Reject(reader.line_num, "invalid email", row[email_i]))
            continue
        phone: str | None = None
        if phone_i is not None and row[phone_i]:
            phone = normalize_phone(row[phone_i])
            if phone is None:
                rejects.append(
                    Reject(
                        reader.line_num,
                        "phone is not E.164 (+ country code and digits)",
                        row[phone_i],
                    )
                )
                continue
        customers.append((email, phone, *pick(row), now))
        consents.append(
            (
                email,
                None if consent_i is None else row[consent_i],
                None if supp_i is None else row[supp_i],
            )
        )
        if len(customers) >= _BATCH:
            flush()
    flush()
    report.rows_read = rows_read


def _merge(conn: sqlite3.Connection, segment: str, now: str) -> None:
    consent = "upper(trim(coalesce(s.consent, '')))"
    suppressions = "nullif(trim(s.suppressions), '')"
    # Klaviyo's consent values; any listed suppression suppresses, except that an unsubscribe
    # listed as its own suppression stays an unsubscribe.
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
    # An unsubscribe or suppression is sticky: an import can suppress, never resubscribe.
    conn.execute(
        f"""
        INSERT INTO consents (customer_id, channel, status, changed_at, source)
        SELECT c.id, 'email', {status}, :now, 'import'
        FROM staging s JOIN customers c ON c.email = s.email WHERE true ORDER BY s.rowid
        ON CONFLICT(customer_id, channel) DO UPDATE SET
            status = excluded.status, changed_at = excluded.changed_at, source = excluded.source
        WHERE consents.status IS NOT excluded.status
          AND (consents.status IN ('subscribed', 'never_subscribed')
               OR excluded.status = 'suppressed')
        """,
        {"now": now},
    )
    conn.execute(
        """
        INSERT OR IGNORE INTO segment_members (segment, customer_id, added_at)
        SELECT :segment, c.id, :now FROM staging s JOIN customers c ON c.email = s.email
        """,
        {"segment": segment, "now": now},
    )


def _write_rejects(store_path: Path, csv_path: Path, rejects: list[Reject]) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = store_path.parent / f"{csv_path.stem}.rejects-{stamp}.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason", "value"])
        for reject in rejects:
            writer.writerow([reject.line, reject.reason, reject.value])
    return out
