"""Per-day figures read from the store: what was planned, what happened, what is outstanding.

The store is the single source of truth: every view (status table, JSON, HTML report) is built
from these read-only queries, never from state kept by a command.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from warmup.calendar import day_date, local_date
from warmup.plan.loader import LoadedPlan
from warmup.store import Store

# Outbox statuses grouped the way an operator reads them.
PENDING = ("pending", "sending", "on_hold")
FAILED = ("failed", "bounced")
UNCERTAIN = ("uncertain",)


@dataclass
class Outstanding:
    pending: int = 0
    failed: int = 0
    uncertain: int = 0
    sent: int = 0

    def add(self, status: str, count: int) -> None:
        if status in PENDING:
            self.pending += count
        elif status in FAILED:
            self.failed += count
        elif status in UNCERTAIN:
            self.uncertain += count
        elif status == "sent":
            self.sent += count


@dataclass
class DayFigures:
    day: int
    date: str
    status: str  # planned | running | waiting | completed | failed
    template: str | None
    send_time: str
    new_setting: str  # the plan's `new:` (50, "10%", all)
    new_limit: int | None  # resolved when the day ran
    new_allocated: int | None
    klaviyo_allocated: int | None
    emails: Outstanding = field(default_factory=Outstanding)
    list_sync: Outstanding = field(default_factory=Outstanding)
    delivered: int = 0
    hard_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    # 5xx replies at send time: the relay took the attempt, so it counts as sent volume.
    bounced_at_send: int = 0

    @property
    def new_sent(self) -> int:
        return self.emails.sent + self.bounced_at_send

    def rate(self, count: int) -> float | None:
        return count / self.new_sent if self.new_sent else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["new_sent"] = self.new_sent
        data["rates"] = {"hard_bounce": self.rate(self.hard_bounces),
                         "complaint": self.rate(self.complaints),
                         "unsubscribe": self.rate(self.unsubscribes)}
        return data


def _history(loaded: LoadedPlan, rows: dict[int, sqlite3.Row]) -> dict[int, date]:
    """Days already run → the last local date they occupied (for the sending-day calendar)."""
    history: dict[int, date] = {}
    for number, row in rows.items():
        when = date.fromisoformat(row["date"])
        if row["completed_at"]:
            finished = local_date(loaded.plan, datetime.fromisoformat(row["completed_at"]))
            when = max(when, finished)
        history[number] = when
    return history


def day_figures(loaded: LoadedPlan, store: Store) -> list[DayFigures]:
    """One entry per day of the plan's schedule (days not run yet are ``planned``)."""
    conn = store.conn
    conn.row_factory = sqlite3.Row
    try:
        rows = {int(r["day"]): r for r in conn.execute("SELECT * FROM days")}
        outbox: dict[tuple[int, str, str], int] = {}
        for r in conn.execute("SELECT day, kind, status, count(*) AS n FROM outbox "
                              "GROUP BY day, kind, status"):
            outbox[(int(r["day"]), str(r["kind"]), str(r["status"]))] = int(r["n"])
        events: dict[tuple[int, str], int] = {}
        for r in conn.execute("SELECT day, type, count(DISTINCT coalesce(customer_id, email)) "
                              "AS n FROM events WHERE day IS NOT NULL GROUP BY day, type"):
            events[(int(r["day"]), str(r["type"]))] = int(r["n"])
        # A hard bounce may be known twice (the relay's 5xx and the provider's event).
        bounced: dict[int, int] = {int(r[0]): int(r[1]) for r in conn.execute(
            "SELECT day, count(DISTINCT customer_id) FROM ("
            " SELECT day, customer_id FROM outbox WHERE kind = 'email' AND status = 'bounced'"
            " UNION SELECT day, customer_id FROM events WHERE type = 'hard_bounced'"
            "  AND day IS NOT NULL) GROUP BY day")}
    finally:
        conn.row_factory = None
    plan = loaded.plan
    history = _history(loaded, rows)
    figures: list[DayFigures] = []
    for setting in plan.schedule.days:
        number = setting.day
        row = rows.get(number)
        when = (row["date"] if row is not None
                else day_date(plan, number, history).isoformat())
        fig = DayFigures(
            day=number, date=when, status=str(row["status"]) if row is not None else "planned",
            template=plan.schedule.template_for(number),
            send_time=plan.schedule.send_time_for(number), new_setting=str(setting.new),
            new_limit=row["new_limit"] if row is not None else None,
            new_allocated=row["new_allocated"] if row is not None else None,
            klaviyo_allocated=row["klaviyo_allocated"] if row is not None else None)
        for (d, kind, status), count in outbox.items():
            if d != number:
                continue
            target = fig.emails if kind == "email" else fig.list_sync
            target.add(status, count)
            if kind == "email" and status == "bounced":
                fig.bounced_at_send += count
        fig.delivered = events.get((number, "delivered"), 0)
        fig.hard_bounces = bounced.get(number, 0)
        fig.complaints = events.get((number, "complained"), 0)
        fig.unsubscribes = events.get((number, "unsubscribed"), 0)
        figures.append(fig)
    return figures


def unsubscribes_waiting(store: Store) -> int:
    """Unsubscribes not yet in Klaviyo's unsubscribe list: consent events not processed yet,
    plus unsubscribe-list calls still in the outbox."""
    unprocessed = store.conn.execute(
        "SELECT count(*) FROM events WHERE type IN ('unsubscribed', 'complained') "
        "AND processed_at IS NULL").fetchone()[0]
    queued = store.conn.execute(
        "SELECT count(*) FROM outbox WHERE kind = 'webhook' "
        "AND status NOT IN ('sent', 'cancelled') "
        "AND json_extract(payload, '$.list') = 'unsubscribe'").fetchone()[0]
    return int(unprocessed) + int(queued)
