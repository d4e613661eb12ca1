"""Most engaged first, by the plan's definition of engagement (``engagement:``).

With ``source: klaviyo`` a day's score of a customer is the sum of ``weights[kind]`` over their
pulled Klaviyo events of the ``window_days`` before the day's midnight; the allocation ranks
by it (highest first, no events = 0), then by the export's last engagement and the stable hash
as before. With ``source: export`` nothing changes. The window ends at the day's midnight, so
events pulled later in the day (or on a re-run) do not change a day's ranking of its own date.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from warmup.plan.models import EngagementSettings

SCORE_TABLE = "engine_engagement"


def window(settings: EngagementSettings, day_start: datetime) -> tuple[str, str]:
    end = day_start.astimezone(UTC).replace(microsecond=0)
    return (end - timedelta(days=settings.window_days)).isoformat(), end.isoformat()


def score_sql(settings: EngagementSettings) -> tuple[str, list[object]]:
    """SUM(weight of kind) over ``klaviyo_events k``: the expression and its parameters."""
    weights = [(kind, weight) for kind, weight in settings.weights.items() if weight]
    if not weights:
        return "0", []
    cases = " ".join("WHEN ? THEN ?" for _ in weights)
    params: list[object] = []
    for kind, weight in weights:
        params += [kind, weight]
    return f"total(CASE k.kind {cases} ELSE 0 END)", params


def prepare_scores(
    conn: sqlite3.Connection, settings: EngagementSettings, day_start: datetime
) -> tuple[str, str]:
    """Fill the temporary score table for the day; (JOIN clause, ORDER BY terms) for the
    ranking query over ``c`` (customers), both empty when the plan ranks by the export."""
    if settings.source != "klaviyo":
        return "", ""
    start, end = window(settings, day_start)
    expression, params = score_sql(settings)
    conn.execute(f"DROP TABLE IF EXISTS temp.{SCORE_TABLE}")
    conn.execute(
        f"CREATE TEMP TABLE {SCORE_TABLE} (customer_id INTEGER PRIMARY KEY, score REAL NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {SCORE_TABLE} SELECT k.customer_id, {expression} FROM klaviyo_events k "
        "WHERE k.occurred_at >= ? AND k.occurred_at < ? GROUP BY k.customer_id",
        [*params, start, end],
    )
    return (
        f"LEFT JOIN {SCORE_TABLE} g ON g.customer_id = c.id ",
        "coalesce(g.score, 0) DESC, ",
    )


def customer_score(
    conn: sqlite3.Connection, settings: EngagementSettings, customer_id: int, day_start: datetime
) -> tuple[float, dict[str, int]]:
    """One customer's score and event counts by kind in the day's window (explain, tests)."""
    start, end = window(settings, day_start)
    counts = {
        str(kind): int(n)
        for kind, n in conn.execute(
            "SELECT kind, count(*) FROM klaviyo_events WHERE customer_id = ? "
            "AND occurred_at >= ? AND occurred_at < ? GROUP BY kind",
            (customer_id, start, end),
        )
    }
    score = sum(settings.weights.get(k, 0.0) * n for k, n in counts.items())  # type: ignore[call-overload]
    return float(score), counts
