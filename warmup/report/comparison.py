"""Is the new provider doing as well as Klaviyo for comparable people? (issue 17, seeds
000/001): delivered, opened, clicked, bounced and complained rates per provider for each
engagement tier, read from the store when the plan pulls Klaviyo's engagement.

A cohort is the ramp's allocations (customer-days) of one provider whose customers share an
engagement tier before day 1 (``engaged``: an open or click with Klaviyo in the plan's
``engagement.window_days`` before the start; ``unengaged``: mail received but none;
``no_history``). Rates are shares of the customer-days mailed. The new provider's side is its
outbox and the events it reported for the day; Klaviyo's side is the events pulled from it
between the day's midnight and the next sending day's (Received Email is its delivery). The
new providers report no opens or clicks to warmup: those rates are Klaviyo's only (null).
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from html import escape
from typing import Any

from warmup.plan.calendar import local_time
from warmup.plan.loader import LoadedPlan
from warmup.store import days, engagement
from warmup.store.backends import Executes
from warmup.store.engagement import CohortFigures

FIGURES = ("delivered", "opened", "clicked", "bounced", "complained")
_FAR = "9999-12-31T00:00:00+00:00"


def comparison(loaded: LoadedPlan, conn: Executes) -> list[dict[str, Any]]:
    """The cohorts' figures and rates; empty unless the plan pulls Klaviyo's engagement."""
    plan = loaded.plan
    if plan.engagement.source != "klaviyo":
        return []
    recorded = sorted((n, date.fromisoformat(state.date)) for n, state in days.states(conn).items())
    starts = [
        (n, local_time(plan, on).astimezone(UTC).replace(microsecond=0)) for n, on in recorded
    ]
    bounds = [
        (n, start.isoformat(), starts[i + 1][1].isoformat() if i + 1 < len(starts) else _FAR)
        for i, (n, start) in enumerate(starts)
    ]
    first = local_time(plan, plan.start_date).astimezone(UTC).replace(microsecond=0)
    window = (
        (first - timedelta(days=plan.engagement.window_days)).isoformat(),
        first.isoformat(),
    )
    return [_row(f) for f in engagement.provider_comparison(conn, bounds, window)]


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


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def render_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`warmup status`'s text: one line per cohort."""
    if not rows:
        return []
    lines = ["compare     tier        provider  mailed  " + "  ".join(FIGURES)]
    for r in rows:
        rates = "  ".join(f"{_pct(r['rates'][n]):>{len(n)}}" for n in FIGURES)
        lines.append(f"            {r['tier']:<11} {r['provider']:<8} {r['mailed']:>7,}  {rates}")
    return lines


def comparison_html(rows: list[dict[str, Any]]) -> str:
    """`warmup report`'s table (empty without rows)."""
    if not rows:
        return ""
    head = ["tier", "provider", "mailed", *FIGURES]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(c)}</td>"
            for c in [
                r["tier"],
                r["provider"],
                f"{r['mailed']:,}",
                *(_pct(r["rates"][n]) for n in FIGURES),
            ]
        )
        + "</tr>"
        for r in rows
    )
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        "<h2>New provider against Klaviyo, by engagement tier</h2>\n"
        '<p class="note">Rates of the customer-days mailed; tiers from Klaviyo\'s events '
        "before day 1. The new provider reports no opens or clicks (–).</p>\n"
        f"<table><tr>{cells}</tr>{body}</table>\n"
    )
