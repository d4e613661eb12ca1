"""A condition's ``consent: {channel: NAME}`` names email, sms or a consent category the plan
maps to a Klaviyo list (seed 004, ``providers.klaviyo.consent_lists``); any other name is
refused at the scenario's line, since it would test a consent nothing ever records."""

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
