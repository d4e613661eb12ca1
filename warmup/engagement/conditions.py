"""A scenario condition's ``engagement`` test as SQL over one customer row ``c``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from warmup.plan.scenario import EngagementPredicate


def engagement_sql(test: EngagementPredicate, day_start: datetime) -> tuple[str, list[Any]]:
    """True when the customer's count of ``test.kinds`` events in the ``within_days`` before
    the day's midnight is within the bounds (no pulled events count as 0)."""
    end = day_start.astimezone(UTC).replace(microsecond=0)
    start = end - timedelta(days=test.within_days)
    marks = ", ".join("?" for _ in test.kinds)
    count = (
        "(SELECT count(*) FROM klaviyo_events k WHERE k.customer_id = c.id "
        f"AND k.kind IN ({marks}) AND k.occurred_at >= ? AND k.occurred_at < ?)"
    )
    base: list[Any] = [*test.kinds, start.isoformat(), end.isoformat()]
    parts: list[str] = []
    params: list[Any] = []
    if test.at_least is not None:
        parts.append(f"{count} >= ?")
        params += [*base, test.at_least]
    if test.at_most is not None:
        parts.append(f"{count} <= ?")
        params += [*base, test.at_most]
    return "(" + " AND ".join(parts) + ")", params
