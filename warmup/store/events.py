"""The events aggregate: what providers said happened to a message (delivered, bounced,
complained, unsubscribed), stored once per ``(source, event_id)``.

The reads that match events to the mail they are about (and the guardrails' per-day rates) also
read the outbox; its status strings are named here until the outbox aggregate owns them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

# Outbox statuses of an email the provider took (or may have taken).
_HANDED_OVER = "'sent', 'bounced', 'uncertain'"

INSERT_SQL = (
    "INSERT OR IGNORE INTO events (source, event_id, type, customer_id, email, day, "
    "occurred_at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Event:
    """One event row as written; ``payload`` is its JSON text."""

    source: str
    event_id: str
    type: str
    customer_id: int | None
    email: str | None
    day: int | None
    occurred_at: str
    received_at: str
    payload: str = "{}"

    def params(self) -> tuple[object, ...]:
        """The parameters of :data:`INSERT_SQL`, for writers that batch it with other writes."""
        return (
            self.source,
            self.event_id,
            self.type,
            self.customer_id,
            self.email,
            self.day,
            self.occurred_at,
            self.received_at,
            self.payload,
        )


def insert(conn: sqlite3.Connection, event: Event) -> bool:
    """Store an event once: False when its ``(source, event_id)`` is already stored."""
    return conn.execute(INSERT_SQL, event.params()).rowcount > 0


def mailed_day(conn: sqlite3.Connection, customer_id: int, occurred_at: str) -> int | None:
    """The day of the customer's latest warm-up email created before the event (the mail the
    event is about); the latest email at all when clocks disagree; None if never mailed."""
    row = conn.execute(
        "SELECT max(day) FROM outbox WHERE customer_id = ? AND kind = 'email' "
        f"AND status IN ({_HANDED_OVER}) AND created_at <= ?",
        (customer_id, occurred_at),
    ).fetchone()
    if row[0] is None:
        row = conn.execute(
            "SELECT max(day) FROM outbox WHERE customer_id = ? AND kind = 'email' "
            f"AND status IN ({_HANDED_OVER})",
            (customer_id,),
        ).fetchone()
    return None if row[0] is None else int(row[0])


def email_days(conn: sqlite3.Connection, customer_id: int) -> list[tuple[str, int]]:
    """(outbox key, day) of every warm-up email row of the customer, whatever its status (an
    event can arrive while its row is still ``sending``)."""
    return [
        (str(key), int(day))
        for key, day in conn.execute(
            "SELECT key, day FROM outbox WHERE customer_id = ? AND kind = 'email'", (customer_id,)
        )
    ]


def next_unprocessed(
    conn: sqlite3.Connection, types: Collection[str], limit: int
) -> list[tuple[int, str, int | None, int | None]]:
    """The oldest ``limit`` events of ``types`` no flow has processed yet: (id, type, customer
    id — matched by email when the event named none —, day)."""
    marks = ", ".join("?" for _ in types)
    rows = conn.execute(
        "SELECT e.id, e.type, COALESCE(e.customer_id, c.id), e.day FROM events e "
        "LEFT JOIN customers c ON e.customer_id IS NULL AND c.email = lower(trim(e.email)) "
        f"WHERE e.processed_at IS NULL AND e.type IN ({marks}) ORDER BY e.id LIMIT ?",
        [*types, limit],
    ).fetchall()
    return [(int(i), str(t), c, d) for i, t, c, d in rows]


def mark_processed(conn: sqlite3.Connection, event_id: int, moment: str) -> None:
    conn.execute("UPDATE events SET processed_at = ? WHERE id = ?", (moment, event_id))


def unprocessed(conn: sqlite3.Connection, types: Collection[str]) -> tuple[int, str | None]:
    """How many events of ``types`` naming a known customer no flow has processed yet, and
    when the oldest of them was received."""
    marks = ", ".join("?" for _ in types)
    count, oldest = conn.execute(
        f"SELECT count(*), min(received_at) FROM events WHERE type IN ({marks}) "
        "AND processed_at IS NULL AND customer_id IS NOT NULL",
        tuple(types),
    ).fetchone()
    return int(count), None if oldest is None else str(oldest)


_FIGURES_SQL = """
WITH mail AS (
    SELECT day, customer_id, status FROM outbox
    WHERE kind = 'email' AND provider = 'new' AND status IN ('sent', 'bounced') AND day < :before
), hard AS (
    SELECT day, customer_id FROM mail WHERE status = 'bounced'
    UNION
    SELECT day, customer_id FROM events
    WHERE type = 'hard_bounced' AND day < :before AND customer_id IS NOT NULL
), kinds AS (
    SELECT DISTINCT day, customer_id, type FROM events
    WHERE type IN ('soft_bounced', 'complained', 'unsubscribed') AND day < :before
      AND customer_id IS NOT NULL
)
SELECT m.day,
       count(*) AS sent,
       (SELECT count(*) FROM hard h WHERE h.day = m.day) AS hard,
       (SELECT count(*) FROM kinds k WHERE k.day = m.day AND k.type = 'soft_bounced'
          AND NOT EXISTS (SELECT 1 FROM hard h WHERE h.day = k.day
                          AND h.customer_id = k.customer_id)) AS soft,
       (SELECT count(*) FROM kinds k WHERE k.day = m.day AND k.type = 'complained') AS complained,
       (SELECT count(*) FROM kinds k WHERE k.day = m.day AND k.type = 'unsubscribed') AS unsub
FROM mail m GROUP BY m.day ORDER BY m.day
"""


@dataclass(frozen=True)
class DayCounts:
    """The new provider's mail of one day and the people each kind of event names (a customer
    counts once per kind; a soft bounce of someone who also bounced hard is not counted)."""

    day: int
    sent: int
    hard: int
    soft: int
    complained: int
    unsubscribed: int


def day_counts(conn: sqlite3.Connection, *, before: int) -> list[DayCounts]:
    """Per day that sent mail on the new provider (days < ``before``), in day order."""
    return [
        DayCounts(*(int(value) for value in row))
        for row in conn.execute(_FIGURES_SQL, {"before": before})
    ]


# Reads of the outbox that the report and the send window need, until the outbox aggregate
# (store/outbox.py) owns them.


def email_progress(conn: sqlite3.Connection, day: int) -> tuple[int, int]:
    """The new provider's email rows of ``day`` not cancelled, and how many of them were
    handed over (sent, bounced, failed or uncertain)."""
    total, done = conn.execute(
        "SELECT count(*), coalesce(sum(status IN ('sent', 'bounced', 'failed', 'uncertain')), 0) "
        "FROM outbox WHERE kind = 'email' AND provider = 'new' AND day = ? "
        "AND status != 'cancelled'",
        (day,),
    ).fetchone()
    return int(total), int(done)


def outbox_counts(conn: sqlite3.Connection) -> list[tuple[int, str, str, int]]:
    """(day, kind, status, rows) of the whole outbox."""
    return [
        (int(day), str(kind), str(status), int(n))
        for day, kind, status, n in conn.execute(
            "SELECT day, kind, status, count(*) AS n FROM outbox GROUP BY day, kind, status"
        )
    ]
