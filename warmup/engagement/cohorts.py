"""The new provider against Klaviyo for comparable people: each provider's figures per
engagement tier, read from the store when the plan pulls Klaviyo's engagement (issue 17).

A cohort is the ramp's allocations (customer-days) of one provider whose customers share an
engagement tier before day 1 (``engaged``: an open or click with Klaviyo in the plan's
``engagement.window_days`` before the start; ``unengaged``: mail received but none;
``no_history``). Rates are shares of the customer-days mailed. The new provider's side is its
outbox and the events it reported for the day (delivered: handed over and not bounced, as
the guardrails count it); Klaviyo's side is the events pulled from it between the day's
midnight and the next sending day's (Received Email is its delivery; a bounce is mailed too). The
new providers report no opens or clicks to warmup: those rates are Klaviyo's only (null).
The status and report show these rows; the relative guardrails judge them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, timedelta
from typing import Any

from warmup.plan.calendar import local_time
from warmup.plan.loader import LoadedPlan
from warmup.store import days, engagement
from warmup.store.backends import Executes
from warmup.store.engagement import CohortFigures

FIGURES = ("delivered", "opened", "clicked", "bounced", "complained")
_FAR = "9999-12-31T00:00:00+00:00"


def comparison(
    loaded: LoadedPlan, conn: Executes, *, only_days: Collection[int] | None = None
) -> list[dict[str, Any]]:
    """The cohorts' figures and rates (of ``only_days`` when given, else of every day that
    ran); empty unless the plan pulls Klaviyo's engagement."""
    plan = loaded.plan
    if plan.engagement.source != "klaviyo":
        return []
    recorded = sorted((n, date.fromisoformat(state.date)) for n, state in days.states(conn).items())
    starts = [
        (n, local_time(plan, on).astimezone(UTC).replace(microsecond=0)) for n, on in recorded
    ]
    # A day's Klaviyo span ends at the next day that ran, whichever days are asked for.
    bounds = [
        (n, start.isoformat(), starts[i + 1][1].isoformat() if i + 1 < len(starts) else _FAR)
        for i, (n, start) in enumerate(starts)
        if only_days is None or n in only_days
    ]
    first = local_time(plan, plan.start_date).astimezone(UTC).replace(microsecond=0)
    window = (
        (first - timedelta(days=plan.engagement.window_days)).isoformat(),
        first.isoformat(),
    )
    splits = [node.id for node in loaded.scenario.nodes if node.type == "split"]
    return [_row(f) for f in engagement.provider_comparison(conn, bounds, window, splits)]


def _row(f: CohortFigures) -> dict[str, Any]:
    counts: dict[str, int | None] = {name: getattr(f, name) for name in FIGURES}
    return {
        "tier": f.tier,
        "provider": f.provider,
        "customer_days": f.customer_days,
        "mailed": f.mailed,
        **counts,
        "rates": {
            name: (None if n is None or not f.mailed else round(n / f.mailed, 4))
            for name, n in counts.items()
        },
    }
