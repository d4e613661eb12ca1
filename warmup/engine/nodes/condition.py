"""``condition``: a test over the customer's own fields and the engagement Klaviyo recorded for
them (pulled into the store, plan ``engagement.source: klaviyo``); every listed test must hold
for ``yes``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from warmup.engine import sql
from warmup.engine.nodes.base import (
    BranchNode,
    Drawing,
    Facts,
    NodeBase,
    NodeType,
    SqlPart,
    StrictModel,
    arrow,
)
from warmup.store import engagement

if TYPE_CHECKING:
    from warmup.engine.context import DayContext

ConsentStatus = Literal["subscribed", "never_subscribed", "unsubscribed", "suppressed"]


class ConsentPredicate(StrictModel):
    # email, sms, or a consent category the plan maps to a Klaviyo list
    # (`providers.klaviyo.consent_lists`; the plan checks the name at load)
    channel: str = Field(default="email", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    status_in: list[ConsentStatus] = Field(min_length=1)


# Klaviyo's email events as warmup names them (warmup.engagement; plan `engagement.pull`).
EngagementEventKind = Literal["received", "opened", "clicked", "bounced", "marked_as_spam"]


class EngagementPredicate(StrictModel):
    """Count of the customer's pulled Klaviyo events of ``kinds`` in the ``within_days`` before
    the day's midnight, against ``at_least`` and/or ``at_most``."""

    kinds: list[EngagementEventKind] = Field(min_length=1)
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)
    within_days: int = Field(default=90, ge=1, le=3650)

    @model_validator(mode="after")
    def _bound(self) -> EngagementPredicate:
        if self.at_least is None and self.at_most is None:
            raise ValueError(
                "an engagement test needs a bound — add `at_least: 1` (engaged) or "
                "`at_most: 0` (none of these events)"
            )
        return self

    def window(self, day_start: datetime) -> tuple[str, str]:
        """[start, end) in the store's time format: the ``within_days`` before the day's
        midnight, so events pulled later in the day do not change the day's answer."""
        end = day_start.astimezone(UTC).replace(microsecond=0)
        return (end - timedelta(days=self.within_days)).isoformat(), end.isoformat()


class ConditionNode(BranchNode):
    """A predicate over customer fields; every listed test must hold for ``yes``."""

    type: Literal["condition"]
    consent: ConsentPredicate | None = None
    email_valid: bool | None = None
    has_phone: bool | None = None
    attribute_equals: dict[str, str | int | float | bool] | None = None
    # Klaviyo's engagement as pulled into the store (plan `engagement.source: klaviyo`)
    engagement: EngagementPredicate | None = None

    @model_validator(mode="after")
    def _at_least_one_test(self) -> ConditionNode:
        if (
            self.consent is None
            and self.email_valid is None
            and self.has_phone is None
            and not self.attribute_equals
            and self.engagement is None
        ):
            raise ValueError(
                "a condition needs at least one test: consent, email_valid, has_phone, "
                "attribute_equals or engagement"
            )
        return self


class Condition(NodeType):
    model = ConditionNode
    drawing = Drawing(mermaid=('{"', '"}'), dot="diamond", fill="#fdebd0")

    def predicate(self, node: NodeBase, ctx: DayContext) -> SqlPart:
        assert isinstance(node, ConditionNode)
        parts: list[SqlPart] = []
        if node.consent is not None:
            parts.append(sql.consent_in(node.consent.channel, node.consent.status_in))
        if node.email_valid is not None:
            parts.append(("c.email_valid = ?", [int(node.email_valid)]))
        if node.has_phone is not None:
            parts.append(
                (
                    "(CASE WHEN COALESCE(c.phone, '') <> '' THEN 1 ELSE 0 END) = ?",
                    [int(node.has_phone)],
                )
            )
        for key, value in (node.attribute_equals or {}).items():
            parts.append(sql.attribute_equals(ctx.conn, key, value))
        if node.engagement is not None:
            test = node.engagement
            start, end = test.window(ctx.start)
            parts.append(
                sql.engagement_within(
                    test.kinds, start, end, at_least=test.at_least, at_most=test.at_most
                )
            )
        return sql.all_of([text for text, _ in parts]), [p for _, own in parts for p in own]

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        assert isinstance(node, ConditionNode)
        said = []
        if node.consent is not None:
            channel = node.consent.channel
            status = facts.consents.get(channel, "never_subscribed")
            said.append(
                f"consent {status}" if channel == "email" else f"{channel} consent {status}"
            )
        if node.email_valid is not None:
            said.append("valid email" if facts.customer["email_valid"] else "invalid email")
        if node.has_phone is not None:
            said.append("has a phone" if facts.customer["phone"] else "no phone")
        if node.attribute_equals:
            attrs = facts.attributes
            said += [f"{k} = {attrs.get(k)!r}" for k in node.attribute_equals]
        if node.engagement is not None:
            said.append(_engagement_fact(node.engagement, facts))
        return f"{', '.join(said)} {arrow(label)}"


def _engagement_fact(test: EngagementPredicate, facts: Facts) -> str:
    """The count the engagement test compared, for the day's window as the run computed it."""
    start, end = test.window(facts.day_start)
    counts = engagement.customer_counts(facts.conn, int(facts.customer["id"]), start, end)
    count = sum(counts.get(kind, 0) for kind in test.kinds)
    return f"{count} {'/'.join(test.kinds)} events in {test.within_days} days"


TYPE = Condition()
