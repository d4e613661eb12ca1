"""Klaviyo profile properties from the plan's mapping (``providers.klaviyo.profile_properties``,
issue 17): what each profile carries to Klaviyo when it joins a list through the bulk import,
and what webhook templates see as ``profile.properties``.

A property copies an export column (a free attribute), a customer field, the warm-up's day,
date or plan name, or the customer's arm of a ``split`` node — the same stable hash the engine
routes by, so Klaviyo-side segments match warmup's arms exactly. A property without a value
(an empty export cell) is left out rather than sent empty.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from warmup.engine.nodes.split import SplitNode, bucket, salt
from warmup.errors import Issue
from warmup.plan.models import CsvMapping, Plan
from warmup.plan.scenario import Scenario
from warmup.plan.yamlpos import Positioned


def properties_for(
    plan: Plan, scenario: Scenario, customer: dict[str, Any], day: int, on: date | None
) -> dict[str, Any]:
    """The mapped properties of one customer (a :func:`warmup.store.customers.property_rows`
    row) for sending day ``day`` on date ``on``."""
    out: dict[str, Any] = {}
    for name, source in plan.providers.klaviyo.profile_properties.items():
        value: Any = None
        if source.column is not None:
            value = (customer.get("attributes") or {}).get(source.column)
        elif source.field is not None:
            value = customer.get(source.field)
        elif source.warmup == "day":
            value = day
        elif source.warmup == "date":
            value = on.isoformat() if on is not None else None
        elif source.warmup == "plan":
            value = plan.name
        elif source.arm is not None:
            node = scenario.by_id.get(source.arm)
            if isinstance(node, SplitNode):
                place = bucket(salt(plan.name, node), customer.get("email"))
                value = None if place is None else ("yes" if place < node.fraction else "no")
        if value is not None and value != "":
            out[name] = value
    return out


def check_arms(plan: Plan, scenario: Scenario, positioned: Positioned) -> list[Issue]:
    """An ``arm`` source names a split node of the scenario (at load time)."""
    issues: list[Issue] = []
    for name, source in plan.providers.klaviyo.profile_properties.items():
        if source.arm is None or isinstance(scenario.by_id.get(source.arm), SplitNode):
            continue
        where = ("providers", "klaviyo", "profile_properties", name, "arm")
        line, col = positioned.where(where) or (None, None)
        splits = [n.id for n in scenario.nodes if isinstance(n, SplitNode)]
        issues.append(
            Issue(
                positioned.file,
                line,
                col,
                f"profile property {name!r} takes the arm of node {source.arm!r}, which is not "
                "a split node of the scenario",
                f"name one of the split nodes ({', '.join(splits)})"
                if splits
                else "add a `type: split` node to the scenario, or drop the property",
            )
        )
    return issues


def mapped_columns(plan: Plan) -> list[str]:
    """The export columns the mapping copies."""
    return [
        source.column
        for source in plan.providers.klaviyo.profile_properties.values()
        if source.column is not None
    ]


def unknown_columns(plan: Plan, columns: set[str]) -> list[tuple[str, str]]:
    """(property, column) for each mapped column that is not among ``columns``; a column the
    import maps to a field of its own is not a free attribute either."""
    mapping = CsvMapping.model_dump(plan.import_.columns)
    # SMS consent is kept among the free columns as well (warmup.importer)
    own = {value for key, value in mapping.items() if value and key != "sms_consent"}
    return [
        (name, source.column)
        for name, source in plan.providers.klaviyo.profile_properties.items()
        if source.column is not None and (source.column not in columns or source.column in own)
    ]


def column_issues(
    plan: Plan, positioned: Positioned, columns: set[str], where_seen: str
) -> list[Issue]:
    """An issue at its line for each mapped export column that is not among ``columns`` (the
    export's free columns, as ``where_seen`` describes them)."""
    issues: list[Issue] = []
    for name, column in unknown_columns(plan, columns):
        line, col = positioned.where(
            ("providers", "klaviyo", "profile_properties", name, "column")
        ) or (None, None)
        issues.append(
            Issue(
                positioned.file,
                line,
                col,
                f"profile property {name!r} copies export column {column!r}, which is not "
                f"among {where_seen}",
                "write the column's header exactly as the export has it; for a column the "
                "import maps to a customer field (First Name, Phone Number…) use `field:`",
            )
        )
    return issues


def attach(
    plan: Plan,
    scenario: Scenario,
    profiles: list[tuple[dict[str, Any], dict[str, Any], int, date | None]],
    *,
    joins_list: bool = True,
) -> None:
    """Give each profile its ``properties`` — (profile, customer row, day, date) — when the
    plan maps any. A profile joining a list then joins through the bulk import (by email), the
    call that carries profile properties, even when its Klaviyo id is known."""
    if not plan.providers.klaviyo.profile_properties:
        return
    for profile, customer, day, on in profiles:
        profile["properties"] = properties_for(plan, scenario, customer, day, on)
        if joins_list:
            profile["klaviyo_id"] = None
