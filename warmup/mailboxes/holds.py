"""Guardrails per mailbox provider group: a group whose hard bounce, complaint or delivered
rate (deferrals and soft bounces lower it) crosses the plan's hold lines is held at its last
day's count, while the other groups go on with the ramp.

A group's figures pool its latest sending days, newest first, until they hold the plan's
``guardrails.min_sample`` sent emails (as the day's own guardrails do); below that, its rates
do not count yet. Figures come from the new-provider emails of each group's customers
(``allocations.grp``) and the events about them."""

from __future__ import annotations

import sqlite3

from warmup.guardrails import DayFigures, _breaches
from warmup.plan import LoadedPlan

_GROUP_FIGURES_SQL = """
WITH flags AS MATERIALIZED (
    SELECT day, customer_id,
           max(type = 'hard_bounced') AS hard, max(type = 'soft_bounced') AS soft,
           max(type = 'complained') AS complained, max(type = 'unsubscribed') AS unsub
    FROM events
    WHERE type IN ('hard_bounced', 'soft_bounced', 'complained', 'unsubscribed')
      AND day < :before AND customer_id IS NOT NULL
    GROUP BY day, customer_id
), mail AS (
    SELECT a.grp, o.day, o.status = 'bounced' OR coalesce(f.hard, 0) AS hard,
           coalesce(f.soft, 0) AS soft, coalesce(f.complained, 0) AS complained,
           coalesce(f.unsub, 0) AS unsub
    FROM outbox o
    JOIN allocations a ON a.day = o.day AND a.customer_id = o.customer_id AND a.grp IS NOT NULL
    LEFT JOIN flags f ON f.day = o.day AND f.customer_id = o.customer_id
    WHERE o.kind = 'email' AND o.provider = 'new' AND o.status IN ('sent', 'bounced')
      AND o.day < :before
)
SELECT grp, day, count(*), sum(hard), sum(soft AND NOT hard), sum(complained), sum(unsub)
FROM mail GROUP BY grp, day ORDER BY grp, day
"""


def group_figures(conn: sqlite3.Connection, before: int) -> dict[str, list[DayFigures]]:
    """Each group's figures per sending day before ``before``, oldest first."""
    found: dict[str, list[DayFigures]] = {}
    for grp, day, sent, hard, soft, complained, unsub in conn.execute(
        _GROUP_FIGURES_SQL, {"before": before}
    ):
        found.setdefault(str(grp), []).append(
            DayFigures(int(day), str(grp), sent, hard, soft, complained, unsub)
        )
    return found


def group_holds(
    loaded: LoadedPlan, conn: sqlite3.Connection, day: int
) -> dict[str, tuple[int, str]]:
    """Groups held on ``day``: group → (its cap: the count it got on its last sending day,
    why)."""
    g = loaded.plan.guardrails
    held: dict[str, tuple[int, str]] = {}
    for grp, figures in group_figures(conn, day).items():
        window: list[DayFigures] = []
        for f in reversed(figures):
            window.append(f)
            if sum(w.sent for w in window) >= g.min_sample:
                break
        pooled = DayFigures(
            max(w.day for w in window),
            grp,
            sum(w.sent for w in window),
            sum(w.hard_bounced for w in window),
            sum(w.soft_bounced for w in window),
            sum(w.complained for w in window),
            sum(w.unsubscribed for w in window),
        )
        if pooled.sent < g.min_sample:
            continue
        breaches = _breaches(pooled, g, "hold")
        if not breaches:
            continue
        last = conn.execute(
            "SELECT new FROM mailbox_days WHERE grp = ? AND day < ? AND new > 0 "
            "ORDER BY day DESC LIMIT 1",
            (grp, day),
        ).fetchone()
        days = sorted(w.day for w in window)
        span = f"day {days[0]}" if len(days) == 1 else f"days {days[0]}–{days[-1]}"
        cap = int(last[0]) if last else 0
        held[grp] = (cap, f"{span}: " + "; ".join(breaches))
    return held
