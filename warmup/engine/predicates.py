"""Branch nodes as SQL predicates over one customer row.

Every predicate reads ``c`` (the ``customers`` row) and ``e`` (its email ``consents`` row, LEFT
JOINed, so it may be NULL) and returns true for ``yes``. A NULL result counts as ``no``. A
customer without a consent row is ``never_subscribed``, as in Klaviyo.

Audience sources read the store's own history, never a provider:
- ``past_audience``: allocated to the new provider on an earlier day (``template`` narrows it
  to the days that sent that template; ``today`` is the day's own template);
- ``exclusion_list``: allocated to the new provider on the previous sending day — exactly who the
  Klaviyo exclusion list holds going into today.
"""

from __future__ import annotations

from typing import Any

from warmup.engagement.conditions import engagement_sql
from warmup.engine.context import DayContext
from warmup.plan.models import Plan
from warmup.plan.scenario import AudienceNode, ConditionNode, Node

# The one rule no scenario can override: these customers are never allocated to anyone.
SAFE = (
    "(COALESCE(e.status, 'never_subscribed') NOT IN ('unsubscribed', 'suppressed') "
    "AND c.email_valid = 1)"
)

SqlPart = tuple[str, list[Any]]


def _consent_column(channel: str) -> str:
    if channel == "email":
        return "e.status"
    return (
        f"(SELECT s.status FROM consents s WHERE s.customer_id = c.id AND s.channel = '{channel}')"
    )


def condition_sql(node: ConditionNode, ctx: DayContext) -> SqlPart:
    parts: list[str] = []
    params: list[Any] = []
    if node.consent is not None:
        marks = ", ".join("?" for _ in node.consent.status_in)
        parts.append(
            f"COALESCE({_consent_column(node.consent.channel)}, 'never_subscribed') IN ({marks})"
        )
        params += node.consent.status_in
    if node.email_valid is not None:
        parts.append("c.email_valid = ?")
        params.append(int(node.email_valid))
    if node.has_phone is not None:
        parts.append("(COALESCE(c.phone, '') <> '') = ?")
        params.append(int(node.has_phone))
    for key, value in (node.attribute_equals or {}).items():
        parts.append("json_extract(c.attributes, ?) = ?")
        params += ['$."' + key.replace('"', '\\"') + '"', value]
    if node.engagement is not None:
        sql, own = engagement_sql(node.engagement, ctx.start)
        parts.append(sql)
        params += own
    return "(" + " AND ".join(parts) + ")", params


def past_days(plan: Plan, day: int, template: str | None) -> list[int]:
    """Earlier days whose recipients count as the past audience (all, or those of a template)."""
    if template is None:
        return list(range(1, day))
    wanted = plan.schedule.template_for(day) if template == "today" else template
    return [d for d in range(1, day) if plan.schedule.template_for(d) == wanted]


def _allocated_new_on(days: list[int]) -> SqlPart:
    if not days:
        return "0", []
    marks = ", ".join(str(int(d)) for d in days)
    return (
        "EXISTS (SELECT 1 FROM allocations a WHERE a.customer_id = c.id "
        f"AND a.provider = 'new' AND a.day IN ({marks}))"
    ), []


def audience_sql(node: AudienceNode, ctx: DayContext) -> SqlPart:
    if node.source == "segment":
        return (
            "EXISTS (SELECT 1 FROM segment_members m WHERE m.segment = ? AND m.customer_id = c.id)"
        ), [node.segment]
    if node.source == "past_audience":
        return _allocated_new_on(past_days(ctx.plan, ctx.day, node.template))
    if node.source == "exclusion_list":
        first = ctx.plan.schedule.exclusion_first_from_day
        if first is not None and ctx.day < first:
            return "0", []  # seed 004: #558 targets the excluded first on its days only
        return _allocated_new_on([ctx.day - 1] if ctx.day > 1 else [])
    raise ValueError("the allocation node is not a predicate")  # walk.py handles it


def predicate(node: Node, ctx: DayContext) -> SqlPart:
    if isinstance(node, ConditionNode):
        return condition_sql(node, ctx)
    if isinstance(node, AudienceNode):
        return audience_sql(node, ctx)
    raise TypeError(f"node {node.id} is not a branch")
