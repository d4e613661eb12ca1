"""Guardrails relative to Klaviyo (issue 17): hold the ramp when the new provider does worse
than Klaviyo for comparable people — its delivered rate more than N points below Klaviyo's,
or its bounce or complaint rate more than N points above, for the same engagement tier.

The figures are the comparison's (:mod:`warmup.engagement.cohorts`) over the days the day's
own guardrails pooled. A tier counts once each side mailed ``relative.min_sample``
customer-days in those days. Opens and clicks are not compared: the new providers report none
to warmup (the plan refuses such lines at load).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmup.engagement.cohorts import comparison
from warmup.plan import LoadedPlan
from warmup.store import Store

# plan line → (comparison figure, the words for it, +1: worse when higher / -1: when lower)
LINES: dict[str, tuple[str, str, int]] = {
    "delivered_rate_below_by": ("delivered", "delivered rate", -1),
    "bounce_rate_above_by": ("bounced", "bounce rate", 1),
    "complaint_rate_above_by": ("complained", "complaint rate", 1),
}


@dataclass(frozen=True)
class RelativeCheck:
    """What the relative lines found: breaches hold the ramp; notes say what was compared."""

    breaches: list[str]
    notes: list[str]


def _points(rate: float) -> str:
    return f"{rate * 100:.2f}".rstrip("0").rstrip(".") + " points"


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _judge(line: str, by: float, tier: str, new: dict[str, Any], klaviyo: dict[str, Any]) -> str:
    figure, words, worse = LINES[line]
    n_rate = new[figure] / new["mailed"]
    k_rate = klaviyo[figure] / klaviyo["mailed"]
    gap = (n_rate - k_rate) * worse
    side = "above" if worse > 0 else "below"
    text = (
        f"{tier}: new provider's {words} {_pct(n_rate)} ({new[figure]} of {new['mailed']}) "
        f"against Klaviyo's {_pct(k_rate)} ({klaviyo[figure]} of {klaviyo['mailed']})"
    )
    if gap > by + 1e-12:
        return f"{text}: {_points(gap)} {side}, over the relative line of {_points(by)}"
    return ""


def relative_check(loaded: LoadedPlan, store: Store, days: list[int]) -> RelativeCheck | None:
    """The relative lines over ``days``; None when the plan sets none."""
    rules = loaded.plan.guardrails.relative
    if rules is None:
        return None
    lines = rules.hold.model_dump(exclude_none=True)
    if not days:
        return RelativeCheck([], ["against Klaviyo: no day to compare yet"])
    figures = comparison(loaded, store.backend, only_days=set(days))
    rows = {(r["tier"], r["provider"]): r for r in figures}
    breaches: list[str] = []
    notes: list[str] = []
    for tier in rules.tiers:
        new = rows.get((tier, "new"))
        klaviyo = rows.get((tier, "klaviyo"))
        mailed = (new["mailed"] if new else 0, klaviyo["mailed"] if klaviyo else 0)
        if new is None or klaviyo is None or min(mailed) < rules.min_sample:
            notes.append(
                f"against Klaviyo, {tier}: {mailed[0]} mailed by the new provider, "
                f"{mailed[1]} by Klaviyo, below min_sample {rules.min_sample} a side: "
                "not compared yet"
            )
            continue
        found = [_judge(line, by, tier, new, klaviyo) for line, by in lines.items()]
        hits = [f"against Klaviyo, {text}" for text in found if text]
        breaches += hits
        if not hits:
            notes.append(
                f"against Klaviyo, {tier}: within the relative lines "
                f"({mailed[0]} and {mailed[1]} mailed)"
            )
    return RelativeCheck(breaches, notes)
