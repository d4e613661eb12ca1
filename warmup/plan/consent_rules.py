"""A condition's ``consent: {channel: NAME}`` names email, sms or a consent category the plan
maps to a Klaviyo list (seed 004, ``providers.klaviyo.consent_lists``); any other name is
refused at the scenario's line, since it would test a consent nothing ever records. A category's
list must not be the exclusion or unsubscribe list warmup itself fills: its members would all
read as subscribed to the category."""

from __future__ import annotations

import difflib
from pathlib import Path

from warmup.errors import Issue
from warmup.plan.models import CONSENT_CHANNELS, Plan
from warmup.plan.scenario import ConditionNode, Scenario
from warmup.plan.yamlpos import Positioned


def check(
    plan: Plan, scenario: Scenario, scenario_positions: Positioned, scenario_path: Path
) -> list[Issue]:
    known = [*CONSENT_CHANNELS, *plan.providers.klaviyo.consent_lists]
    issues = []
    for index, node in enumerate(scenario.nodes):
        if not isinstance(node, ConditionNode) or node.consent is None:
            continue
        channel = node.consent.channel
        if channel in known:
            continue
        line, col = scenario_positions.where(("nodes", index, "consent", "channel")) or (
            None,
            None,
        )
        close = difflib.get_close_matches(channel, known, n=1)
        issues.append(
            Issue(
                scenario_path,
                line,
                col,
                f"node {node.id} tests consent {channel!r}, which is neither a channel (email, "
                "sms) nor a consent category of the plan",
                (f"did you mean {close[0]!r}? " if close else "")
                + f"map it to its Klaviyo list under `providers.klaviyo.consent_lists: "
                f"{{{channel}: {{name: ...}}}}` in the plan",
            )
        )
    return issues


def check_lists(plan: Plan, positioned: Positioned, plan_path: Path) -> list[Issue]:
    """A consent category mapped to the exclusion or unsubscribe list (same name or id)."""
    k = plan.providers.klaviyo
    issues = []
    for category, ref in k.consent_lists.items():
        for which, own in (("exclusion", k.exclusion_list), ("unsubscribe", k.unsubscribe_list)):
            ids = {own.id, *(own.per_day or {}).values()} - {None}
            if not ((ref.name is not None and ref.name == own.name) or ref.id in ids):
                continue
            line, col = positioned.where(("providers", "klaviyo", "consent_lists", category)) or (
                None,
                None,
            )
            issues.append(
                Issue(
                    plan_path,
                    line,
                    col,
                    f"consent category {category!r} is mapped to the {which} list, which warmup "
                    "fills itself: every customer it adds would read as subscribed to it",
                    f"map {category} to the Klaviyo list your sign-up forms fill (e.g. "
                    "{name: Newsletter})",
                )
            )
    return issues
