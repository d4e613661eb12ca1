"""Seed 004's own rules, checked at ``warmup validate`` with the line that breaks them.

- Variant 1 sends each template once: its earlier recipients stay on the new provider, so a
  template used on two days mails them the same email twice. ``schedule.template_reuse: auto``
  applies this to a scenario that keeps earlier recipients (a ``past_audience`` node without a
  ``template``) and has no per-template past audience (variant 2's #331); ``refuse`` always,
  ``allow`` never.
- Variant 2 starts X days before Klaviyo's campaign, X = the days one template is used:
  ``schedule.klaviyo_lead_days: X`` refuses a template used on more days than X.
- Variant 2's #558 puts whoever is in the exclusion list first from a day on:
  ``schedule.exclusion_first_from_day`` needs a scenario with an ``exclusion_list`` audience node
  (variant 1 has none; the setting would silently do nothing).
- A condition's ``engagement`` test reads events pulled from Klaviyo: it needs
  ``engagement.source: klaviyo`` and its kinds among ``engagement.pull``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from warmup.errors import Issue
from warmup.plan.models import Plan
from warmup.plan.scenario import AudienceNode, ConditionNode, Scenario
from warmup.plan.yamlpos import Positioned


def keeps_earlier_recipients(scenario: Scenario) -> bool:
    audiences = [n for n in scenario.nodes if isinstance(n, AudienceNode)]
    past = [n for n in audiences if n.source == "past_audience"]
    return any(n.template is None for n in past) and not any(n.template for n in past)


def check(
    plan: Plan,
    scenario: Scenario,
    positioned: Positioned,
    scenario_positions: Positioned,
    scenario_path: Path,
) -> list[Issue]:
    issues: list[Issue] = []
    schedule = plan.schedule
    days_of: dict[str, list[int]] = defaultdict(list)
    for day in schedule.days:
        template = schedule.template_for(day.day)
        if template is not None:
            days_of[template].append(day.day)

    def at_day(day: int, message: str, hint: str) -> Issue:
        line, col = positioned.where(("schedule", "days", day - 1, "template")) or (
            positioned.where(("schedule", "days", day - 1)) or (None, None)
        )
        return Issue(positioned.file, line, col, message, hint)

    refuse = schedule.template_reuse == "refuse" or (
        schedule.template_reuse == "auto" and keeps_earlier_recipients(scenario)
    )
    if refuse:
        for template, days in days_of.items():
            for later in days[1:]:
                issues.append(
                    at_day(
                        later,
                        f"day {later} reuses template {template!r} of day {days[0]}: this "
                        f"scenario ({scenario.name}) keeps earlier recipients on the new "
                        "provider, so they would get the same email twice (seed 004, variant 1: "
                        "each template is used once)",
                        "give the day a template of its own, or use variant 2 (which skips "
                        "whoever had the template); `schedule.template_reuse: allow` overrides",
                    )
                )
    lead = schedule.klaviyo_lead_days
    if lead is not None:
        for template, days in days_of.items():
            if len(days) > lead:
                issues.append(
                    at_day(
                        days[lead],
                        f"template {template!r} is used on {len(days)} days but "
                        f"klaviyo_lead_days is {lead}: the warm-up starts X days before "
                        "Klaviyo's campaign, X = the days one template is used (seed 004, "
                        "variant 2)",
                        f"use {template!r} on at most {lead} days, or raise "
                        f"`schedule.klaviyo_lead_days` to {len(days)}",
                    )
                )
    first = schedule.exclusion_first_from_day
    if first is not None and not any(
        isinstance(n, AudienceNode) and n.source == "exclusion_list" for n in scenario.nodes
    ):
        line, col = positioned.where(("schedule", "exclusion_first_from_day")) or (None, None)
        issues.append(
            Issue(
                positioned.file,
                line,
                col,
                f"exclusion_first_from_day: {first} has nothing to act on: scenario "
                f"{scenario.name} has no `source: exclusion_list` audience node (variant 2's "
                "#558), so nobody would be put first by it",
                "remove the setting, or use a scenario with an exclusion-list node (variant 2)",
            )
        )
    for index, node in enumerate(scenario.nodes):
        if not isinstance(node, ConditionNode) or node.engagement is None:
            continue
        line, col = scenario_positions.where(("nodes", index, "engagement")) or (None, None)
        if plan.engagement.source != "klaviyo":
            issues.append(
                Issue(
                    scenario_path,
                    line,
                    col,
                    f"node {node.id} tests Klaviyo engagement, but the plan does not pull it",
                    "add `engagement: {source: klaviyo}` to the plan "
                    "(engagement.source: klaviyo), or drop the test",
                )
            )
            continue
        unpulled = [k for k in node.engagement.kinds if k not in plan.engagement.pull]
        if unpulled:
            issues.append(
                Issue(
                    scenario_path,
                    line,
                    col,
                    f"node {node.id} tests {', '.join(unpulled)}, which the plan does not pull",
                    "add it to the plan's `engagement.pull`",
                )
            )
    return issues
