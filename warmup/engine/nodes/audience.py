"""``audience``: a membership test (segment, past audience, exclusion list), or the day's
allocation — the node that ranks the day's eligible customers and sends the new provider's
share down ``yes``.

Audience sources read the store's own history, never a provider:
- ``past_audience``: allocated to the new provider on an earlier day (``template`` narrows it
  to the days that sent that template; ``today`` is the day's own template);
- ``exclusion_list``: allocated to the new provider on the previous sending day — exactly who the
  Klaviyo exclusion list holds going into today.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from warmup.engine import sql
from warmup.engine.nodes.base import (
    UNSAFE,
    BranchNode,
    Drawing,
    Facts,
    NodeBase,
    NodeType,
    SqlPart,
    arrow,
)
from warmup.store import customers, journeys

if TYPE_CHECKING:
    from warmup.engine.context import DayContext
    from warmup.mailboxes.allocation import GroupDay
    from warmup.plan.models import Plan


class AudienceNode(BranchNode):
    """Membership test, or the day's allocation.

    ``source``:
    - ``segment``: member of ``segment`` (an imported Klaviyo segment/list);
    - ``past_audience``: received a warm-up email on an earlier day (``template`` narrows it to
      one template: ``today`` means the day's own template, as seed 004's #331);
    - ``exclusion_list``: already in the Klaviyo exclusion list (seed 004's #558);
    - ``allocation``: the new provider's share of the day's limit from the plan's schedule —
      ``yes`` goes to the new provider, ``no`` stays with Klaviyo. Customers are taken in order
      of arrival (a customer held by a ``wait`` arrives later, which is how #299 puts earlier
      days' customers first), then most engaged first, then a stable hash of (plan, email).
    """

    type: Literal["audience"]
    source: Literal["segment", "past_audience", "exclusion_list", "allocation"]
    segment: str | None = None
    template: str | None = None
    provider: Literal["new"] = "new"

    @model_validator(mode="after")
    def _params_fit_source(self) -> AudienceNode:
        if self.source == "segment" and not self.segment:
            raise ValueError("an audience with `source: segment` needs `segment: NAME`")
        if self.source != "segment" and self.segment:
            raise ValueError("`segment:` only goes with `source: segment`")
        if self.template is not None and self.source != "past_audience":
            raise ValueError("`template:` only goes with `source: past_audience`")
        return self


def past_days(plan: Plan, day: int, template: str | None) -> list[int]:
    """Earlier days whose recipients count as the past audience (all, or those of a template)."""
    if template is None:
        return list(range(1, day))
    wanted = plan.schedule.template_for(day) if template == "today" else template
    return [d for d in range(1, day) if plan.schedule.template_for(d) == wanted]


def _history_days(node: AudienceNode, plan: Plan, day: int) -> list[int]:
    if node.source == "past_audience":
        return past_days(plan, day, node.template)
    return [day - 1] if day > 1 else []  # the exclusion list going into the day


class Audience(NodeType):
    model = AudienceNode
    drawing = Drawing(mermaid=('{{"', '"}}'), dot="hexagon", fill="#d5f5e3")

    def is_allocation(self, node: NodeBase) -> bool:
        return isinstance(node, AudienceNode) and node.source == "allocation"

    def predicate(self, node: NodeBase, ctx: DayContext) -> SqlPart:
        assert isinstance(node, AudienceNode)
        if node.source == "segment":
            assert node.segment is not None
            return sql.in_segment(node.segment)
        if node.source == "allocation":
            raise ValueError("the allocation node is not a predicate")  # the walker ranks it
        first = ctx.plan.schedule.exclusion_first_from_day
        if node.source == "exclusion_list" and first is not None and ctx.day < first:
            return "(1 = 0)", []  # seed 004: #558 targets the excluded first on its days only
        return sql.allocated_new_on(_history_days(node, ctx.plan, ctx.day))

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        assert isinstance(node, AudienceNode)
        customer_id = int(facts.customer["id"])
        if node.source == "segment":
            assert node.segment is not None
            member = customers.in_segment(facts.conn, node.segment, customer_id)
            return f"{'member' if member else 'not a member'} of {node.segment} {arrow(label)}"
        if node.source == "allocation":
            return _allocation_reason(facts, label)
        got = journeys.new_provider_days(
            facts.conn, customer_id, _history_days(node, facts.loaded.plan, facts.day)
        )
        if node.source == "exclusion_list":
            first = facts.loaded.plan.schedule.exclusion_first_from_day
            if got and first is not None and facts.day < first:
                return (
                    f"in the exclusion list going into the day, but it goes first only from day "
                    f"{first} (schedule.exclusion_first_from_day) {arrow(label)}"
                )
            return (
                f"{'in' if got else 'not in'} the exclusion list going into the day {arrow(label)}"
            )
        return (
            f"received the warm-up on day {', '.join(map(str, got))} {arrow(label)}"
            if got
            else f"has not received it before {arrow(label)}"
        )


def _allocation_reason(facts: Facts, label: str) -> str:
    day_row, journey = facts.day_row, facts.journey
    limit = int(day_row["new_limit"]) if day_row is not None and day_row["new_limit"] else 0
    rank = journey["rank"]
    if label == UNSAFE:
        return "never allocated: unsubscribed, suppressed or invalid email"
    if rank is None:
        return "allocation not run yet"
    from warmup.mailboxes.allocation import customer_group

    score = _score_fact(facts)
    scored = f" ({score})" if score else ""
    limit_text = f"{limit:,}{_held_volume(facts)}"
    group = customer_group(facts.conn, facts.day, int(facts.customer["id"]))
    if label == "yes" or journey["outcome"] in ("new", "skipped"):
        if group is None:
            return f"limit: rank {rank:,}{scored} ≤ limit {limit_text} → new provider"
        return (
            f"limit: rank {rank:,}{scored}, {_group_room(group)}, within limit {limit_text} "
            "→ new provider"
        )
    if group is not None and group.cap is not None and group.new >= group.cap:
        held = f" (held: {group.held})" if group.held else ""
        return f"{group.name} at its cap of {group.cap:,}{held} → stays with Klaviyo"
    return f"limit: rank {rank:,}{scored} > limit {limit_text} → stays with Klaviyo"


def _held_volume(facts: Facts) -> str:
    """Why the limit is an earlier day's: the guardrails held or rolled back the ramp (their
    reasons — absolute or against Klaviyo — are in the run's notes and `warmup status`)."""
    row = facts.day_row
    volume = row["volume_day"] if row is not None else None
    if not volume or int(volume) == facts.day:
        return ""
    assert row is not None
    schedule = facts.loaded.plan.schedule
    eligible = int(row["new_allocated"] or 0) + int(row["klaviyo_allocated"] or 0)
    if row["new_limit"] is not None and int(row["new_limit"]) < schedule.day(int(volume)).limit_for(
        eligible
    ):
        return (
            f" (the day's own schedule: the guardrails hold the ramp at day {int(volume)}'s "
            "volume, which is more)"
        )
    return f" (day {int(volume)}'s volume: the guardrails held the ramp)"


def _score_fact(facts: Facts) -> str | None:
    """The engagement score the allocation ranked by, when the plan ranks by Klaviyo's."""
    settings = facts.loaded.plan.engagement
    if settings.source != "klaviyo":
        return None
    from warmup.engagement.ranking import customer_score  # the plan loads after the registry

    score, counts = customer_score(facts.conn, settings, int(facts.customer["id"]), facts.day_start)
    seen = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no events"
    return f"engagement score {score:g} ({seen} in {settings.window_days} days)"


def _group_room(group: GroupDay) -> str:
    if group.cap is None:
        return f"{group.name} has no cap"
    return f"{group.name} under its cap of {group.cap:,}"


TYPE = Audience()
