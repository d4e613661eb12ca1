"""Most engaged first, by the plan's definition of engagement (``engagement:``).

With ``source: klaviyo`` a day's score of a customer is the sum of ``weights[kind]`` over their
pulled Klaviyo events of the ``window_days`` before the day's midnight; the allocation ranks
by it (highest first, no events = 0), then by the export's last engagement and the stable hash
as before. With ``source: export`` nothing changes. The window ends at the day's midnight, so
events pulled later in the day (or on a re-run) do not change a day's ranking of its own date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warmup.engine import sql
from warmup.plan.models import EngagementSettings
from warmup.store import engagement
from warmup.store.backends import Backend, Executes


def window(settings: EngagementSettings, day_start: datetime) -> tuple[str, str]:
    end = day_start.astimezone(UTC).replace(microsecond=0)
    return (end - timedelta(days=settings.window_days)).isoformat(), end.isoformat()


def prepare_scores(conn: Backend, settings: EngagementSettings, day_start: datetime) -> bool:
    """Fill the engine's score table for the day when the plan ranks by Klaviyo's engagement;
    whether the allocation ranks by it (``engine.sql.rank_stage2``'s ``scored``)."""
    if settings.source != "klaviyo":
        return False
    start, end = window(settings, day_start)
    weights = [(str(kind), weight) for kind, weight in settings.weights.items() if weight]
    sql.fill_engagement_scores(conn, weights, start, end)
    return True


def customer_score(
    conn: Executes, settings: EngagementSettings, customer_id: int, day_start: datetime
) -> tuple[float, dict[str, int]]:
    """One customer's score and event counts by kind in the day's window (explain, tests)."""
    start, end = window(settings, day_start)
    counts = engagement.customer_counts(conn, customer_id, start, end)
    score = sum(settings.weights.get(k, 0.0) * n for k, n in counts.items())  # type: ignore[call-overload]
    return float(score), counts
