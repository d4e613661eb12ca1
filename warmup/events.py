"""Storing provider events once, and importing them from providers that only export files.

An event is stored once per ``(source, event_id)`` (the ``events`` table's UNIQUE key), so a
webhook retried by the provider, a replayed request or a re-imported CSV changes nothing.
Each event is tied to its customer (by email) and to the sending day of the mail it is about, so
guardrails can count bounces and complaints per day: exactly, when the payload names the message
(SendGrid's ``warmup_key`` custom argument is the outbox key; SES reports the Message-ID warmup
wrote, which is derived from that key), else the customer's latest warm-up email sent before the
event.

CSV files (``warmup events import PLAN FILE.csv``, see :mod:`warmup.consent.flow`) have these
columns (header names are case-insensitive): ``event_id``, ``type``, ``email``, ``occurred_at``
(ISO 8601; a time without offset is UTC). ``type`` is one of :data:`EVENT_TYPES`. A file is
validated whole before anything is stored: one bad row rejects the file, with its line number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warmup import clock
from warmup.csvfile import not_utf8, refuse_non_regular
from warmup.email.message import message_id_for
from warmup.errors import CsvImportError
from warmup.store import Store, consents, customers, now_iso
from warmup.store import events as stored_events
from warmup.store.backends import Executes

EVENT_TYPES = ("delivered", "hard_bounced", "soft_bounced", "complained", "unsubscribed")
# and from a provider's own events: `deferred`, its "try again later" (SendGrid's deferred
# events), which counts toward the mailbox group's deferrals only (warmup.mailboxes.holds)
PROVIDER_EVENT_TYPES = (*EVENT_TYPES, "deferred")
# Events that withdraw consent: they start the scenario's consent-reject flow.
CONSENT_EVENTS = ("unsubscribed", "complained")
DEFAULT_SOURCE = "new"
_CSV_COLUMNS = ("event_id", "type", "email", "occurred_at")


@dataclass(frozen=True)
class IncomingEvent:
    event_id: str
    type: str
    email: str
    occurred_at: str
    payload: dict[str, Any] | None = None


@dataclass
class RecordResult:
    stored: int = 0
    duplicates: int = 0
    # Stored, but naming nobody in the store (kept for the record, counted nowhere).
    unknown_customers: int = 0
    consent_events: int = 0


def parse_time(text: str) -> str:
    """An ISO 8601 time → the store's format (UTC, seconds). Raises ValueError when unreadable."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return now_iso(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


def check_event(
    event_id: str,
    event_type: str,
    email: str,
    occurred_at: str,
    *,
    types: Sequence[str] = EVENT_TYPES,
) -> str | None:
    """What is wrong with one event's fields, or None."""
    if not event_id.strip():
        return "event_id is empty"
    if len(event_id) > 200:
        return "event_id is longer than 200 characters"
    if event_type not in types:
        return f"type {event_type!r} is not one of {', '.join(types)}"
    if "@" not in email or len(email) > 320:
        return f"email {email!r} is not an email address"
    try:
        parse_time(occurred_at)
    except ValueError:
        return f"occurred_at {occurred_at!r} is not an ISO 8601 time"
    return None


def record_events(store: Store, events: Iterable[IncomingEvent], *, source: str) -> RecordResult:
    """Store events once each, in one transaction; duplicates (same source and id) are counted,
    not stored again. Events must have passed :func:`check_event`."""
    result = RecordResult()
    received = now_iso()
    conn = store.backend
    with conn.transaction():
        for event in events:
            email = event.email.strip().lower()
            occurred = parse_time(event.occurred_at)
            customer_id = customers.id_for_email(conn, email)
            day = None if customer_id is None else _day_of(conn, customer_id, occurred, event)
            row = stored_events.Event(
                source,
                event.event_id,
                event.type,
                customer_id,
                email,
                day,
                occurred,
                received,
                json.dumps(event.payload or {}, sort_keys=True),
            )
            if not stored_events.insert(conn, row):
                result.duplicates += 1
                continue
            result.stored += 1
            if customer_id is None:
                result.unknown_customers += 1
            elif event.type in CONSENT_EVENTS:
                result.consent_events += 1
            elif event.type == "hard_bounced":
                # As for an SMTP 5xx (and Klaviyo's HARD_BOUNCE suppression): a provider's
                # hard bounce makes the address unmailable, so no later day allocates it.
                consents.suppress_hard_bounce(
                    conn, customer_id, at=occurred, keep=consents.WITHDRAWN
                )
    return result


def _day_of(conn: Executes, customer_id: int, occurred: str, event: IncomingEvent) -> int | None:
    """The sending day of the email the event is about."""
    payload = event.payload or {}
    key, message_id = payload.get("warmup_key"), payload.get("message_id")
    if isinstance(key, str) or isinstance(message_id, str):
        for row_key, day in stored_events.email_days(conn, customer_id):
            if row_key == key or (
                isinstance(message_id, str) and _message_id_of(row_key, message_id) == message_id
            ):
                return day
    return stored_events.mailed_day(conn, customer_id, occurred)


def _message_id_of(key: str, reported: str) -> str:
    # the Message-ID warmup writes for the key, with the reported one's domain
    domain = reported.rstrip(">").rpartition("@")[2]
    return message_id_for(key, domain)


def read_events_csv(path: Path) -> list[IncomingEvent]:
    """Every event of a CSV export, validated; the first bad row raises CsvImportError."""
    refuse_non_regular(path)
    try:
        return _read_events_csv(path)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except csv.Error as exc:
        raise CsvImportError(
            f"not a readable CSV: {exc}",
            file=path,
            hint='close every quoted field, and double any quote inside one ("")',
        ) from None


def _read_events_csv(path: Path) -> list[IncomingEvent]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CsvImportError(
            f"cannot read: {exc.strerror}",
            file=path,
            hint="check the path; the file is the provider's event export "
            "with columns event_id, type, email, occurred_at",
        ) from None
    with handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [name for name in _CSV_COLUMNS if name not in header]
        if missing:
            raise CsvImportError(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                file=path,
                line=1,
                hint=f"the header must name {', '.join(_CSV_COLUMNS)} (any order, extra "
                "columns are kept with the event)",
            )
        where = {name: header.index(name) for name in _CSV_COLUMNS}
        events: list[IncomingEvent] = []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CsvImportError(
                    f"{len(row)} fields where the header has {len(header)}", file=path, line=line
                )
            fields = {name: row[index].strip() for name, index in where.items()}
            problem = check_event(
                fields["event_id"], fields["type"], fields["email"], fields["occurred_at"]
            )
            if problem:
                raise CsvImportError(
                    problem,
                    file=path,
                    line=line,
                    hint="fix the row and import again; nothing was stored",
                )
            extra = {name: row[i] for i, name in enumerate(header) if name not in where}
            events.append(
                IncomingEvent(
                    fields["event_id"],
                    fields["type"],
                    fields["email"],
                    fields["occurred_at"],
                    extra or None,
                )
            )
    return events


@dataclass(frozen=True)
class Backlog:
    count: int
    oldest_age: timedelta | None


def unsubscribe_backlog(store: Store, *, now: datetime | None = None) -> Backlog:
    """Consent-rejects not yet in Klaviyo's unsubscribe list: unsubscribes/complaints the
    consent flow has not processed, plus unsubscribe-list outbox rows not yet sent."""
    event_count, event_oldest = stored_events.unprocessed(store.backend, CONSENT_EVENTS)
    row_count, row_oldest = consents.unsubscribe_rows_unsent(store.backend)
    oldest = min((t for t in (event_oldest, row_oldest) if t), default=None)
    if oldest is None:
        return Backlog(event_count + row_count, None)
    now = now or clock.now()
    return Backlog(event_count + row_count, max(timedelta(0), now - datetime.fromisoformat(oldest)))
