"""Load a Klaviyo list/segment export (or any CSV with a column mapping) into the store.

Speed matters (exports run to millions of rows), so Python only validates emails and phones,
picks the columns the store normalises and writes the free columns' JSON; the store stages the
rows (``executemany`` on SQLite, ``COPY`` on PostgreSQL) and upserts customers, consents and
segment memberships with set-based statements (:mod:`warmup.store.bulk_import`) — all in one
transaction, so an interrupted import leaves nothing half-written.

Rules:
- email is the hard id: trimmed and lowercased; rows with an invalid email are rejected;
- a phone that is present but not E.164 is dropped with a warning (line and value): list
  imports carry the email alone, so the customer is imported without it;
- duplicate emails merge (a later non-empty value wins); re-importing is an upsert;
- the columns without a field of their own are kept as strings, their names once per store
  (``attribute_names``) and each customer's cells as a JSON array (``attribute_values``);
  an empty cell never removes a stored value;
- consent never moves back from unsubscribed/suppressed to subscribed through an import:
  "nobody who unsubscribed anywhere may be mailed again".
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

from warmup import addresses, clock
from warmup.csvfile import not_utf8, refuse_non_regular
from warmup.errors import CsvImportError
from warmup.plan.loader import LoadedPlan
from warmup.plan.models import CsvMapping
from warmup.plan.properties import mapped_columns
from warmup.store import Store, now_iso, open_store
from warmup.store.bulk_import import FIELDS, StagingLayout, bulk_import, bulk_settings
from warmup.store.customers import SEPARATOR

_EMAIL = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")
# what the joined form of attribute_values may not hold in a cell: a quote, a backslash, a
# control character — the separator (0x1F, customers.SEPARATOR) among them — as UTF-8 bytes
# (no multi-byte character holds a byte below 0x80)
_JOINED_SPECIAL = bytes(range(0x20)) + b'"\\'
MAX_REJECTS_SHOWN = 10
# A bound on what a CSV row may hold in memory (Klaviyo exports have about 30 columns).
MAX_COLUMNS = 1000

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
    # rows loaded without a value that could not be kept (a phone that is not E.164)
    warnings: list[Reject] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)

    def summary(self) -> str:
        lines = [
            f"imported {self.file} into segment {self.segment!r}"
            if self.rows_loaded
            else f"read {self.file}: no customer loaded into segment {self.segment!r}",
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
        if self.warnings:
            lines.append(f"  phones dropped    {len(self.warnings):,}")
            for warning in self.warnings[:MAX_REJECTS_SHOWN]:
                lines.append(
                    f"  {self.file}:{warning.line}: warning: {warning.reason}: {warning.value!r}"
                )
            if len(self.warnings) > MAX_REJECTS_SHOWN:
                lines.append(f"  … {len(self.warnings) - MAX_REJECTS_SHOWN:,} more")
        return "\n".join(lines)


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def is_valid_email(email: str) -> bool:
    return addresses.is_valid(email)


def normalize_phone(raw: str) -> str | None:
    """``+420 777 123 456`` → ``+420777123456``; ``None`` when not E.164."""
    phone = raw.strip()
    # most exports write the digits alone: then there is nothing to remove, and a
    # translate (a lookup per character) cost more than the rest of the check
    if not phone[1:].isdigit():
        phone = phone.translate(_PHONE_PUNCTUATION)
    return phone if _E164.match(phone) else None


class _Columns:
    """Header names → indexes (matched case-insensitively), and the staging row the store loads:
    the email, the columns it normalises itself (``RAW_FIELDS``, the phone and SMS consent)
    and the free columns' JSON (see :mod:`warmup.store.bulk_import` for the load itself).
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
        folded: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            folded.setdefault(name.lower(), []).append(i)

        def twice(name: str, at: list[int]) -> CsvImportError:
            # whichever were read, the other would be lost or misread (`Email,Email` mailed
            # the second address and kept the first as an attribute)
            return CsvImportError(
                f"the header names the column `{name}` twice (columns {at[0] + 1} and {at[1] + 1})",
                file=file,
                line=1,
                hint="rename or remove one of them, so the file says which one holds what",
            )

        # a free column is kept by its exact name (`Source` and a custom `source` are two);
        # a blank name (a spreadsheet's trailing empty columns) is none warmup reads
        exact: dict[str, int] = {}
        for i, name in enumerate(names):
            if name and name in exact:
                raise twice(name, [exact[name], i])
            exact[name] = i

        def find(name: str | None) -> int | None:
            # a column warmup reads by name: its exact spelling, else its only case-insensitive
            # match (`EMAIL` and `email` but no `Email`: which one is meant is unknown)
            if name is None:
                return None
            if name.strip() in exact:
                return exact[name.strip()]
            at = folded.get(name.strip().lower())
            if at is None:
                return None
            if len(at) > 1:
                raise twice(names[at[1]], at)
            return at[0]

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
        # SMS consent stays among the free columns too (conditions may test it as before)
        self.sms = find(mapping.sms_consent)
        known = {email, self.phone, *self.raw.values()}
        self.extra = [(i, names[i]) for i in range(len(names)) if i not in known]
        self.width = len(names)

    def staged(self) -> tuple[StagingLayout, Callable[[list[str]], tuple[str, ...]]]:
        """The staging layout, and a row → its staging cells (without the JSON)."""
        picked = {**self.raw}
        if self.phone is not None:
            picked["phone"] = self.phone
        if self.sms is not None:
            picked["sms"] = self.sms
        fields = tuple(name for name in FIELDS if name in picked)
        indexes = [self.email, *(picked[name] for name in fields)]
        pick = itemgetter(*indexes) if len(indexes) > 1 else (lambda row: (row[indexes[0]],))
        return StagingLayout(fields, tuple(name for _, name in self.extra)), pick

    def values(self, positions: Mapping[str, int]) -> Callable[[list[str]], str | None]:
        """A row → its free cells as the store keeps them, in the order of their store-wide
        ``positions`` ("" for an empty cell or a column this export lacks; migration 009):
        joined by ``customers.SEPARATOR``, or as a JSON array when a cell holds a quote, a
        backslash or a control character (the separator included)."""
        if not self.extra:
            return lambda row: None
        slots = [-1] * (max(positions[name] for _, name in self.extra) + 1)
        for index, name in self.extra:
            slots[positions[name]] = index
        pick: Callable[[list[str]], tuple[str, ...]]
        if -1 in slots:

            def pick(row: list[str]) -> tuple[str, ...]:
                return tuple(row[i] if i >= 0 else "" for i in slots)

        elif len(slots) > 1:
            pick = itemgetter(*slots)
        else:
            pick = lambda row: (row[slots[0]],)  # noqa: E731 - itemgetter gives a bare value
        separators = len(slots) - 1
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        join = SEPARATOR.join

        def values(row: list[str]) -> str:
            cells = pick(row)
            joined = join(cells)
            # the joined form when the only special characters are the separators between
            # the cells; one C pass over the bytes (a regular expression's per-character
            # class test cost a tenth of the import's instructions)
            utf8 = joined.encode()
            if len(utf8) - len(utf8.translate(None, _JOINED_SPECIAL)) == separators:
                return SEPARATOR + joined
            return encode(cells)

        return values


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
            property_columns=mapped_columns(loaded.plan),
        )
    finally:
        if own_store:
            store.close()


def _import(
    store: Store,
    path: Path,
    mapping: CsvMapping,
    segment: str,
    progress: Progress | None,
    *,
    property_columns: Sequence[str] = (),
) -> ImportReport:
    refuse_non_regular(path)
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
    with handle:
        # strict: a quoted field still open at the end of the file is an error, where the
        # lenient reader would swallow every later row into that one field
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvImportError(
                "the file is empty",
                file=path,
                line=1,
                hint="export the segment again with its header row",
            ) from None
        except UnicodeDecodeError:
            raise not_utf8(path) from None
        except csv.Error as exc:
            raise CsvImportError(f"not a readable CSV: {exc}", file=path, line=1) from None
        if len(header) > MAX_COLUMNS:
            raise CsvImportError(
                f"the header has {len(header):,} columns; warmup reads at most {MAX_COLUMNS:,}",
                file=path,
                line=1,
                hint="export only the profile fields you need (Klaviyo exports have about 30)",
            )
        cols = _Columns(header, mapping, path)
        free = {name for _, name in cols.extra}
        for column in property_columns:
            if column not in free:
                raise CsvImportError(
                    f"no `{column}` column, which the plan's providers.klaviyo."
                    "profile_properties copy to Klaviyo",
                    file=path,
                    line=1,
                    hint="export that column too, or correct the property's `column:` in the "
                    "plan (a column the import maps to a field of its own takes `field:`)",
                )
        with bulk_settings(store):
            _load(store, reader, cols, report, progress, handle, now)
    if report.rejects:
        # beside a SQLite store; a PostgreSQL store has no folder, so beside the export
        beside = store.path if store.dialect == "sqlite" else path
        report.rejects_file = _write_rejects(beside, path, report.rejects)
    return report


def _load(
    store: Store,
    reader: CsvReader,
    cols: _Columns,
    report: ImportReport,
    progress: Progress | None,
    handle: TextIO,
    now: str,
) -> None:
    """Load the validated rows and record the import, in one transaction."""
    path = report.file
    layout, pick = cols.staged()
    try:
        counts = bulk_import(
            store,
            layout,
            lambda positions: _valid_rows(
                reader, cols, pick, cols.values(positions), report, progress, handle
            ),
            file=path,
            segment=report.segment,
            started_at=now,
            tally=lambda: (report.rows_read, report.rows_loaded, report.rows_rejected),
        )
    except csv.Error as exc:
        start = _record_start(path) or reader.line_num
        raise CsvImportError(
            f"unreadable CSV from this line on: {exc}",
            file=path,
            line=start,
            hint="a quoted field here has no closing quote: close it, and double any "
            'quote inside a quoted field ("")',
        ) from None
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    report.customers_new = counts.new
    report.customers_updated = counts.touched
    report.duplicates_merged = report.rows_loaded - report.customers_new - report.customers_updated


_PROGRESS_EVERY = 20_000


def _valid_rows(
    reader: CsvReader,
    cols: _Columns,
    pick: Callable[[list[str]], tuple[str, ...]],
    values: Callable[[list[str]], str | None],
    report: ImportReport,
    progress: Progress | None,
    handle: TextIO,
) -> Iterator[tuple[str | None, ...]]:
    """The staging rows to load, with the email (and phone) normalised; every other row is
    recorded as a reject with its line number."""
    rejects = report.rejects
    email_i, phone_i, width = cols.email, cols.phone, cols.width
    # the address check is `is_valid_email`, whatever implements it
    valid_email = is_valid_email
    rows_read = loaded = 0
    for rows_read, row in enumerate(reader, 1):  # noqa: B007 - the count is the report's
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
            del row[width:]
        email = row[email_i].strip().lower()
        if not valid_email(email):
            # the reason is worked out only for the rare refused row
            reason = addresses.problem(email) or "invalid email"
            rejects.append(Reject(reader.line_num, reason, row[email_i]))
            continue
        if phone_i is not None and row[phone_i]:
            phone = normalize_phone(row[phone_i])
            if phone is None:
                report.warnings.append(
                    Reject(
                        reader.line_num,
                        "phone is not E.164 (+ country code and digits); imported without it",
                        row[phone_i],
                    )
                )
            row[phone_i] = phone or ""
        row[email_i] = email
        loaded += 1
        if progress is not None and loaded % _PROGRESS_EVERY == 0:
            report.rows_loaded = loaded
            progress(handle.buffer.tell())
        yield (*pick(row), values(row))
    report.rows_read = rows_read
    report.rows_loaded = loaded
    if progress is not None:
        progress(handle.buffer.tell())


# OWASP, "CSV Injection": a cell starting with one of these is read as a formula by
# spreadsheets; prefixing a single quote makes it text. Every cell is quoted as well.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a spreadsheet shows it, never run: ``=HYPERLINK(…)`` → ``'=HYPERLINK(…)``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _write_rejects(store_path: Path, csv_path: Path, rejects: list[Reject]) -> Path:
    # UTC: a file name must not depend on the machine's time zone.
    stamp = clock.now().strftime("%Y%m%d-%H%M%SZ")
    out = store_path.parent / f"{csv_path.stem}.rejects-{stamp}.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(["line", "reason", "value"])
        for reject in rejects:
            writer.writerow(
                [reject.line, spreadsheet_safe(reject.reason), spreadsheet_safe(reject.value)]
            )
    return out


def _record_start(path: Path) -> int | None:
    """The line where the record the CSV reader choked on begins (an unbalanced quote runs on
    to the end of the file, so the reader's own line number points past the mistake). Only
    called after an error: it reads the file again."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, strict=True)
        last = 0
        try:
            for _ in reader:
                last = reader.line_num
        except csv.Error:
            return last + 1
    return None
