"""Plan checks of ``guardrails.relative`` against the sections it depends on: Klaviyo's side
of the comparison is the engagement the plan pulls, so the plan must pull it, and each line
needs the Klaviyo metric it compares with."""

from __future__ import annotations

from warmup.errors import Issue
from warmup.plan.models import Plan
from warmup.plan.yamlpos import Positioned

# Each relative line and the pulled Klaviyo event that makes Klaviyo's side of it.
NEEDS = {
    "delivered_rate_below_by": "received",
    "bounce_rate_above_by": "bounced",
    "complaint_rate_above_by": "marked_as_spam",
}


def relative_issues(plan: Plan, positioned: Positioned) -> list[Issue]:
    relative = plan.guardrails.relative
    if relative is None:
        return []

    def at(*path: str) -> tuple[int | None, int | None]:
        return positioned.where(("guardrails", "relative", *path), key=True) or (None, None)

    if plan.engagement.source != "klaviyo":
        line, col = at()
        return [
            Issue(
                positioned.file,
                line,
                col,
                "guardrails.relative compares with Klaviyo's rates, but the plan does not pull "
                "Klaviyo's engagement",
                "add `engagement: {source: klaviyo}` to the plan, or remove `relative:`",
            )
        ]
    issues = []
    lines = relative.hold.model_dump(exclude_none=True)
    if not lines:
        line, col = at("hold") if "hold" in relative.model_fields_set else at()
        issues.append(
            Issue(
                positioned.file,
                line,
                col,
                "guardrails.relative sets no hold line",
                "add e.g. `hold: {bounce_rate_above_by: 0.01, complaint_rate_above_by: 0.001}`",
            )
        )
    for name in lines:
        kind = NEEDS[name]
        if kind not in plan.engagement.pull:
            line, col = at("hold", name)
            issues.append(
                Issue(
                    positioned.file,
                    line,
                    col,
                    f"guardrails.relative.hold.{name} needs Klaviyo's {kind} events, which "
                    "`engagement.pull` does not fetch",
                    f"add {kind} to `engagement.pull`, or drop {name}",
                )
            )
    return issues
