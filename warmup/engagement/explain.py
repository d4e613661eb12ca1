"""What ``warmup explain`` says of a customer's Klaviyo engagement on a day: the events a
condition counted, and the score the allocation ranked by."""

from __future__ import annotations

import sqlite3
from datetime import date

from warmup.calendar import day_date, local_time
from warmup.engagement.conditions import count_sql
from warmup.engagement.ranking import customer_score
from warmup.plan import LoadedPlan
from warmup.plan.scenario import EngagementPredicate


def _start(loaded: LoadedPlan, day: int, stored_date: str | None) -> date:
    return date.fromisoformat(stored_date) if stored_date else day_date(loaded.plan, day)


def condition_fact(
    loaded: LoadedPlan,
    conn: sqlite3.Connection,
    test: EngagementPredicate,
    customer_id: int,
    day: int,
    stored_date: str | None,
) -> str:
    start = local_time(loaded.plan, _start(loaded, day, stored_date))
    sql, params = count_sql(test, start)
    (count,) = conn.execute(
        f"SELECT {sql} FROM customers c WHERE c.id = ?", [*params, customer_id]
    ).fetchone()
    return f"{int(count)} {'/'.join(test.kinds)} events in {test.within_days} days"


def score_fact(
    loaded: LoadedPlan, conn: sqlite3.Connection, customer_id: int, day: int, stored: str | None
) -> str | None:
    settings = loaded.plan.engagement
    if settings.source != "klaviyo":
        return None
    start = local_time(loaded.plan, _start(loaded, day, stored))
    score, counts = customer_score(conn, settings, customer_id, start)
    seen = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no events"
    return f"engagement score {score:g} ({seen} in {settings.window_days} days)"
