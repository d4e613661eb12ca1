"""Load a Klaviyo list/segment export (or any CSV with a column mapping) into the store.

Speed matters (exports run to millions of rows), so rows are validated in Python, written to a
temporary staging table with ``executemany``, and merged into the store with a few set-based
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
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from warmup.errors import CsvImportError
from warmup.plan.loader import LoadedPlan
from warmup.plan.models import CsvMapping
from warmup.store import Store, now_iso, open_store

_EMAIL = re.compile(r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")
_CONSENT = {
    "SUBSCRIBED": "subscribed",
    "NEVER_SUBSCRIBED": "never_subscribed",
    "UNSUBSCRIBED": "unsubscribed",
    "": "never_subscribed",
}
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
    return len(email) <= 254 and _EMAIL.match(email) is not None and len(
        email.partition("@")[0]) <= 64


def normalize_phone(raw: str) -> str | None:
    """``+420 777 123 456`` → ``+420777123456``; ``None`` when not E.164."""
    phone = raw.strip().translate(_PHONE_PUNCTUATION)
    return phone if _E164.match(phone) else None


def _iso(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).isoformat()
    except ValueError:
        return None


class _Columns:
    """Header names → indexes, matched case-insensitively."""

    def __init__(self, header: list[str], mapping: CsvMapping, file: Path) -> None:
        folded = {name.strip().lstrip("\ufeff").lower(): i for i, name in enumerate(header)}

        def find(name: str | None) -> int | None:
            return None if name is None else folded.get(name.strip().lower())

        email = find(mapping.email)
        if email is None:
            email = find("Email Address")
        if email is None:
            raise CsvImportError(
                f"no `{mapping.email}` column (found: {', '.join(header[:12])}"
                f"{'…' if len(header) > 12 else ''})",
                file=file, line=1,
                hint="name the email column in the plan under import.columns.email",
            )
        self.email = email
        self.phone = find(mapping.phone)
        self.external_id = find(mapping.external_id)
        self.first_name = find(mapping.first_name)
        self.last_name = find(mapping.last_name)
        self.consent = find(mapping.consent)
        self.last_open = find(mapping.last_open)
        self.last_click = find(mapping.last_click)
        self.suppressions = find(mapping.suppressions)
        self.klaviyo_id = find(mapping.klaviyo_id)
        known = {i for i in (self.email, self.phone, self.external_id, self.first_name,
                             self.last_name, self.consent, self.last_open, self.last_click,
                             self.suppressions, self.klaviyo_id) if i is not None}
        self.extra = [(i, header[i].strip().lstrip("\ufeff")) for i in range(len(header))
                      if i not in known]


def import_csv(loaded: LoadedPlan, csv_path: Path | str, *, segment: str | None = None,
               progress: Progress | None = None, store: Store | None = None) -> ImportReport:
    """Import ``csv_path`` into the plan's store and its segment; see the module docstring."""
    own_store = store is None
    store = store or open_store(loaded.store_path)
    try:
        return _import(store, Path(csv_path), loaded.plan.import_.columns,
                       segment or loaded.plan.import_.segment, progress)
    finally:
        if own_store:
            store.close()


def _import(store: Store, path: Path, mapping: CsvMapping, segment: str,
            progress: Progress | None) -> ImportReport:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CsvImportError("file not found", file=path,
                             hint="check the path of the export") from None
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
            raise CsvImportError("the file is empty", file=path, line=1,
                                 hint="export the segment again with its header row") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvImportError(f"not a readable CSV: {exc}", file=path, line=1) from None
        cols = _Columns(header, mapping, path)
        with store.transaction():
            conn.execute("DROP TABLE IF EXISTS temp.staging")
            conn.execute(
                "CREATE TEMP TABLE staging (email TEXT, phone TEXT, external_id TEXT, "
                "klaviyo_id TEXT, first_name TEXT, last_name TEXT, attributes TEXT, "
                "last_open_at TEXT, last_click_at TEXT, last_engaged_at TEXT, consent TEXT)"
            )
            before = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            try:
                _stage(conn, reader, cols, report, progress, handle)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise CsvImportError(f"unreadable CSV: {exc}", file=path,
                                     line=reader.line_num,
                                     hint="save the file as UTF-8 CSV") from None
            staged_distinct = conn.execute(
                "SELECT count(DISTINCT email) FROM staging").fetchone()[0]
            report.duplicates_merged = report.rows_loaded - staged_distinct
            _merge(conn, segment, now)
            after = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            report.customers_new = after - before
            report.customers_updated = staged_distinct - report.customers_new
            conn.execute(
                "INSERT INTO imports (file, segment, started_at, finished_at, rows_read, "
                "rows_loaded, rows_rejected) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(path), segment, now, now_iso(), report.rows_read, report.rows_loaded,
                 report.rows_rejected),
            )
            conn.execute("DROP TABLE temp.staging")
    if report.rejects:
        report.rejects_file = _write_rejects(store.path, path, report.rejects)
    return report


_BATCH = 20_000


def _stage(conn, reader, cols: _Columns, report: ImportReport,  # type: ignore[no-untyped-def]
           progress: Progress | None, handle) -> None:
    insert = ("INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    batch: list[tuple[object, ...]] = []
    rejects = report.rejects
    email_i, phone_i = cols.email, cols.phone
    ext_i, kid_i = cols.external_id, cols.klaviyo_id
    first_i, last_i = cols.first_name, cols.last_name
    open_i, click_i = cols.last_open, cols.last_click
    consent_i, supp_i = cols.consent, cols.suppressions
    extra = cols.extra
    dumps = json.dumps
    width = len(extra) + 10
    rows_read = 0
    for row in reader:
        rows_read += 1
        line = reader.line_num
        if len(row) < width and not any(row):
            continue  # blank line
        try:
            email = row[email_i].strip().lower()
        except IndexError:
            rejects.append(Reject(line, "row has fewer columns than the header", ",".join(row)))
            continue
        if not is_valid_email(email):
            rejects.append(Reject(line, "invalid email", row[email_i]))
            continue
        phone: str | None = None
        if phone_i is not None and phone_i < len(row) and row[phone_i].strip():
            phone = normalize_phone(row[phone_i])
            if phone is None:
                rejects.append(Reject(line, "phone is not E.164 (+ country code and digits)",
                                      row[phone_i]))
                continue

        def cell(i: int | None, row: list[str] = row) -> str | None:
            if i is None or i >= len(row):
                return None
            value = row[i].strip()
            return value or None

        last_open = _iso(row[open_i]) if open_i is not None and open_i < len(row) else None
        last_click = _iso(row[click_i]) if click_i is not None and click_i < len(row) else None
        engaged = max(filter(None, (last_open, last_click)), default=None)
        consent = _CONSENT.get((cell(consent_i) or "").upper(), "never_subscribed")
        suppressions = cell(supp_i)
        if suppressions and suppressions not in ("[]", "{}"):
            consent = "suppressed" if consent != "unsubscribed" or "UNSUBSCRIBE" not in (
                suppressions) else "unsubscribed"
        attributes = {name: row[i] for i, name in extra if i < len(row) and row[i]}
        batch.append((email, phone, cell(ext_i), cell(kid_i), cell(first_i), cell(last_i),
                      dumps(attributes, ensure_ascii=False) if attributes else None,
                      last_open, last_click, engaged, consent))
        if len(batch) >= _BATCH:
            conn.executemany(insert, batch)
            report.rows_loaded += len(batch)
            batch.clear()
            if progress is not None:
                progress(handle.buffer.tell())
    if batch:
        conn.executemany(insert, batch)
        report.rows_loaded += len(batch)
    report.rows_read = rows_read
    if progress is not None:
        progress(handle.buffer.tell())


def _merge(conn, segment: str, now: str) -> None:  # type: ignore[no-untyped-def]
    # Rows are merged in file order, so for duplicates a later non-empty value wins.
    conn.execute(
        """
        INSERT INTO customers (email, phone, external_id, klaviyo_id, first_name, last_name,
            attributes, last_open_at, last_click_at, last_engaged_at, created_at, updated_at)
        SELECT email, phone, external_id, klaviyo_id, first_name, last_name,
            coalesce(attributes, '{}'), last_open_at, last_click_at, last_engaged_at, :now, :now
        FROM staging WHERE true ORDER BY rowid
        ON CONFLICT(email) DO UPDATE SET
            phone = coalesce(excluded.phone, phone),
            external_id = coalesce(excluded.external_id, external_id),
            klaviyo_id = coalesce(excluded.klaviyo_id, klaviyo_id),
            first_name = coalesce(excluded.first_name, first_name),
            last_name = coalesce(excluded.last_name, last_name),
            attributes = json_patch(attributes, excluded.attributes),
            last_open_at = nullif(max(coalesce(excluded.last_open_at, ''),
                                      coalesce(last_open_at, '')), ''),
            last_click_at = nullif(max(coalesce(excluded.last_click_at, ''),
                                       coalesce(last_click_at, '')), ''),
            last_engaged_at = nullif(max(coalesce(excluded.last_engaged_at, ''),
                                         coalesce(last_engaged_at, '')), ''),
            updated_at = excluded.updated_at
        """,
        {"now": now},
    )
    # An unsubscribe or suppression is sticky: an import can suppress, never resubscribe.
    conn.execute(
        """
        INSERT INTO consents (customer_id, channel, status, changed_at, source)
        SELECT c.id, 'email', s.consent, :now, 'import'
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
