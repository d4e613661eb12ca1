"""A scenario condition's ``engagement`` test as SQL over one customer row ``c``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from warmup.plan.scenario import EngagementPredicate


def count_sql(test: EngagementPredicate, day_start: datetime) -> tuple[str, list[Any]]:
    """The customer's count of ``test.kinds`` events in the ``within_days`` before the day's
    midnight (no pulled events: 0)."""
    end = day_start.astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(days=test.within_days)
    marks = ", ".join("?" for _ in test.kinds)
    return (
        "(SELECT count(*) FROM klaviyo_events k WHERE k.customer_id = c.id "
        f"AND k.kind IN ({marks}) AND k.occurred_at >= ? AND k.occurred_at < ?)"
    ), [*test.kinds, start.isoformat(), end.isoformat()]


def engagement_sql(test: EngagementPredicate, day_start: datetime) -> tuple[str, list[Any]]:
    """True when that count is within the test's bounds."""
    count, base = count_sql(test, day_start)
    parts: list[str] = []
    params: list[Any] = []
    if test.at_least is not None:
        parts.append(f"{count} >= ?")
        params += [*base, test.at_least]
    if test.at_most is not None:
        parts.append(f"{count} <= ?")
        params += [*base, test.at_most]
    return "(" + " AND ".join(parts) + ")", params
