"""The engagement aggregate: the email events Klaviyo recorded for the plan's customers
(received, opened, clicked, bounced, marked as spam), one row per Klaviyo event id, and a pull
cursor per metric (issue 17, seed 004).

A page of events is stored together with its metric's cursor (:func:`store_page`), in one
transaction: a pull killed part-way resumes from the last committed page, with no gap and
nothing stored twice. The engine's ranking and condition tests read ``klaviyo_events`` through
its own SQL seam (``warmup.engine.sql``); the reads here serve explain, the dry run and the
report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

_LOOKUP = 500  # emails per IN (…) lookup, under SQLite's variable limit


@dataclass(frozen=True)
class StoredEvent:
    """One pulled event as the store keeps it: ``occurred_at`` in the store's time format."""

    id: str
    email: str | None
    occurred_at: str


@dataclass(frozen=True)
class Cursor:
    metric_id: str
    until: str


def cursor(conn: sqlite3.Connection, kind: str) -> Cursor | None:
    """Where the last pull of ``kind`` ended, and under which metric id."""
    row = conn.execute(
        "SELECT metric_id, until FROM klaviyo_event_cursors WHERE kind = ?", (kind,)
    ).fetchone()
    return None if row is None else Cursor(str(row[0]), str(row[1]))


def store_page(
    conn: sqlite3.Connection,
    kind: str,
    metric_id: str,
    until: str,
    page: Sequence[StoredEvent],
    *,
    pulled_at: str,
) -> int:
    """Keep the page's events of customers the store holds (once per event id) and move the
    metric's cursor to ``until``; call inside the page's transaction. The new events stored."""
    emails = sorted({e.email for e in page if e.email})
    ids: dict[str, int] = {}
    for i in range(0, len(emails), _LOOKUP):
        chunk = emails[i : i + _LOOKUP]
        marks = ",".join("?" for _ in chunk)
        ids.update(conn.execute(f"SELECT email, id FROM customers WHERE email IN ({marks})", chunk))
    stored = 0
    for event in page:
        customer = ids.get(event.email or "")
        if customer is None:
            continue
        stored += conn.execute(
            "INSERT OR IGNORE INTO klaviyo_events (id, customer_id, kind, occurred_at) "
            "VALUES (?, ?, ?, ?)",
            (event.id, customer, kind, event.occurred_at),
        ).rowcount
    conn.execute(
        "INSERT INTO klaviyo_event_cursors (kind, metric_id, until, events, pulled_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET "
        "metric_id = excluded.metric_id, until = excluded.until, "
        "events = CASE WHEN klaviyo_event_cursors.metric_id = excluded.metric_id "
        "THEN klaviyo_event_cursors.events + excluded.events ELSE excluded.events END, "
        "pulled_at = excluded.pulled_at",
        (kind, metric_id, until, stored, pulled_at),
    )
    return stored


@dataclass(frozen=True)
class Totals:
    events: int
    customers: int
    last_pull: str | None


def totals(conn: sqlite3.Connection) -> Totals:
    """Events stored, customers they belong to, and when the last pull committed a page."""
    events, people, pulled = conn.execute(
        "SELECT count(*), count(DISTINCT customer_id), "
        "(SELECT max(pulled_at) FROM klaviyo_event_cursors) FROM klaviyo_events"
    ).fetchone()
    return Totals(int(events), int(people), None if pulled is None else str(pulled))


def count_since(conn: sqlite3.Connection, since: str) -> int:
    """Events that occurred at or after ``since``."""
    (count,) = conn.execute(
        "SELECT count(*) FROM klaviyo_events WHERE occurred_at >= ?", (since,)
    ).fetchone()
    return int(count)


def customer_counts(
    conn: sqlite3.Connection, customer_id: int, start: str, end: str
) -> dict[str, int]:
    """One customer's events by kind in [start, end)."""
    return {
        str(kind): int(n)
        for kind, n in conn.execute(
            "SELECT kind, count(*) FROM klaviyo_events WHERE customer_id = ? "
            "AND occurred_at >= ? AND occurred_at < ? GROUP BY kind",
            (customer_id, start, end),
        )
    }


def kind_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Every stored event by kind."""
    return {
        str(kind): int(n)
        for kind, n in conn.execute("SELECT kind, count(*) FROM klaviyo_events GROUP BY kind")
    }
