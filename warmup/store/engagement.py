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

from collections.abc import Sequence
from dataclasses import dataclass

from warmup.store.backends import Executes

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


def cursor(conn: Executes, kind: str) -> Cursor | None:
    """Where the last pull of ``kind`` ended, and under which metric id."""
    row = conn.execute(
        "SELECT metric_id, until FROM klaviyo_event_cursors WHERE kind = ?", (kind,)
    ).fetchone()
    return None if row is None else Cursor(str(row[0]), str(row[1]))


def store_page(
    conn: Executes,
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
            "INSERT INTO klaviyo_events (id, customer_id, kind, occurred_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
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


def totals(conn: Executes) -> Totals:
    """Events stored, customers they belong to, and when the last pull committed a page."""
    events, people, pulled = conn.execute(
        "SELECT count(*), count(DISTINCT customer_id), "
        "(SELECT max(pulled_at) FROM klaviyo_event_cursors) FROM klaviyo_events"
    ).fetchone()
    return Totals(int(events), int(people), None if pulled is None else str(pulled))


def count_since(conn: Executes, since: str) -> int:
    """Events that occurred at or after ``since``."""
    (count,) = conn.execute(
        "SELECT count(*) FROM klaviyo_events WHERE occurred_at >= ?", (since,)
    ).fetchone()
    return int(count)


def customer_counts(conn: Executes, customer_id: int, start: str, end: str) -> dict[str, int]:
    """One customer's events by kind in [start, end)."""
    return {
        str(kind): int(n)
        for kind, n in conn.execute(
            "SELECT kind, count(*) FROM klaviyo_events WHERE customer_id = ? "
            "AND occurred_at >= ? AND occurred_at < ? GROUP BY kind",
            (customer_id, start, end),
        )
    }


@dataclass(frozen=True)
class CohortFigures:
    """One (engagement tier, provider) cohort over the ramp's allocations: customer-days, and
    how many of them were mailed, delivered, opened, clicked, bounced and complained. A
    figure the provider does not report to warmup is None (the new provider's opens and
    clicks)."""

    tier: str
    provider: str
    customer_days: int
    mailed: int
    delivered: int
    opened: int | None
    clicked: int | None
    bounced: int
    complained: int


# A customer's tier before the ramp, from Klaviyo's events in the window before day 1.
ENGAGED, UNENGAGED, NO_HISTORY = "engaged", "unengaged", "no_history"
TIERS = (ENGAGED, UNENGAGED, NO_HISTORY)

_KLAVIYO_SEEN = (
    "EXISTS (SELECT 1 FROM klaviyo_events k WHERE k.customer_id = a.customer_id "
    "AND k.kind = '{kind}' AND k.occurred_at >= b.s AND k.occurred_at < b.e)"
)
_BOUNCED, _COMPLAINED = "'hard_bounced', 'soft_bounced'", "'complained'"
_NEW_EVENT = (
    "EXISTS (SELECT 1 FROM events v WHERE v.customer_id = a.customer_id AND v.day = a.day "
    "AND v.type IN ({types}))"
)


def provider_comparison(
    conn: Executes,
    bounds: Sequence[tuple[int, str, str]],
    tier_window: tuple[str, str],
    split_nodes: Sequence[str] = (),
) -> list[CohortFigures]:
    """Each allocation (day, customer, provider) of the ``bounds`` days — (day, start, end),
    the span whose Klaviyo events count for that day — and each customer whose path through
    one of ``split_nodes`` ended unallocated (a control arm: Klaviyo's), by the customer's
    engagement tier before the ramp (``tier_window``: [start, end)). The new provider's side
    is its outbox and its events for the day; Klaviyo's is its pulled events in the day's
    span (Received Email is its delivery; a Bounced Email was mailed without one)."""
    if not bounds:
        return []
    values = ", ".join("(?, ?, ?)" for _ in bounds)
    # The day's allocations, and a split's arm whose path ended without one (the control
    # group: Klaviyo mails it); Klaviyo's side counts as mailed only what its events show.
    arms = "SELECT al.day, al.customer_id, al.provider FROM allocations al JOIN b ON b.day = al.day"
    if split_nodes:
        marks = ", ".join("?" for _ in split_nodes)
        arms += (
            " UNION ALL SELECT j.day, j.customer_id, 'klaviyo' FROM journey_rows j "
            "JOIN b ON b.day = j.day WHERE j.outcome = 'ended' AND NOT EXISTS (SELECT 1 FROM "
            "allocations al WHERE al.day = j.day AND al.customer_id = j.customer_id) AND "
            f"EXISTS (SELECT 1 FROM json_each(j.path) WHERE json_each.value IN ({marks}))"
        )
    received = _KLAVIYO_SEEN.format(kind="received")

    def side(new: str, klaviyo: str) -> str:
        return f"CASE WHEN a.provider = 'new' THEN {new} ELSE {klaviyo} END"

    mailed_new = (
        "EXISTS (SELECT 1 FROM outbox o WHERE o.customer_id = a.customer_id AND o.day = a.day "
        "AND o.kind = 'email' AND o.status IN ('sent', 'bounced', 'uncertain'))"
    )
    bounced_new = _NEW_EVENT.format(types=_BOUNCED)
    # Delivered as the day's own guardrails count it: handed over and not bounced (an SMTP
    # relay reports no `delivered` events, only its refusals).
    delivered_new = (
        "EXISTS (SELECT 1 FROM outbox o WHERE o.customer_id = a.customer_id AND o.day = a.day "
        f"AND o.kind = 'email' AND o.status = 'sent') AND NOT {bounced_new}"
    )
    bounced_klaviyo = _KLAVIYO_SEEN.format(kind="bounced")
    # Klaviyo records Received Email for delivered mail only: a bounced one was mailed too.
    mailed_klaviyo = f"({received} OR {bounced_klaviyo})"
    spam = _KLAVIYO_SEEN.format(kind="marked_as_spam")
    columns = [
        f"{side(mailed_new, mailed_klaviyo)} AS mailed",
        f"{side(delivered_new, received)} AS delivered",
        f"{side('NULL', _KLAVIYO_SEEN.format(kind='opened'))} AS opened",
        f"{side('NULL', _KLAVIYO_SEEN.format(kind='clicked'))} AS clicked",
        f"{side(bounced_new, bounced_klaviyo)} AS bounced",
        f"{side(_NEW_EVENT.format(types=_COMPLAINED), spam)} AS complained",
    ]
    rows = conn.execute(
        f"WITH b(day, s, e) AS (VALUES {values}), "
        "t AS (SELECT c.id AS cid, CASE "
        "WHEN EXISTS (SELECT 1 FROM klaviyo_events k WHERE k.customer_id = c.id "
        "AND k.kind IN ('opened', 'clicked') AND k.occurred_at >= ? AND k.occurred_at < ?) "
        f"THEN '{ENGAGED}' "
        "WHEN EXISTS (SELECT 1 FROM klaviyo_events k WHERE k.customer_id = c.id "
        "AND k.kind = 'received' AND k.occurred_at >= ? AND k.occurred_at < ?) "
        f"THEN '{UNENGAGED}' ELSE '{NO_HISTORY}' END AS tier FROM customers c), "
        f"d AS ({arms}), "
        f"x AS (SELECT t.tier, a.provider, {', '.join(columns)} "
        "FROM d a JOIN b ON b.day = a.day JOIN t ON t.cid = a.customer_id) "
        "SELECT tier, provider, count(*), sum(mailed), sum(delivered), sum(opened), "
        "sum(clicked), sum(bounced), sum(complained) FROM x GROUP BY tier, provider",
        [v for bound in bounds for v in bound] + [*tier_window, *tier_window, *split_nodes],
    ).fetchall()
    found = [
        CohortFigures(
            str(r[0]),
            str(r[1]),
            int(r[2]),
            int(r[3] or 0),
            int(r[4] or 0),
            None if r[5] is None else int(r[5]),
            None if r[6] is None else int(r[6]),
            int(r[7] or 0),
            int(r[8] or 0),
        )
        for r in rows
    ]
    order = {tier: i for i, tier in enumerate(TIERS)}
    return sorted(found, key=lambda f: (order.get(f.tier, 9), f.provider != "new"))
