"""``condition``: a test over the customer's own fields; every listed test must hold for
``yes``."""

from __future__ import annotations

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

if TYPE_CHECKING:
    from warmup.engine.context import DayContext

ConsentStatus = Literal["subscribed", "never_subscribed", "unsubscribed", "suppressed"]


class ConsentPredicate(StrictModel):
    channel: Literal["email", "sms"] = "email"
    status_in: list[ConsentStatus] = Field(min_length=1)


class ConditionNode(BranchNode):
    """A predicate over customer fields; every listed test must hold for ``yes``."""

    type: Literal["condition"]
    consent: ConsentPredicate | None = None
    email_valid: bool | None = None
    has_phone: bool | None = None
    attribute_equals: dict[str, str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _at_least_one_test(self) -> ConditionNode:
        if (
            self.consent is None
            and self.email_valid is None
            and self.has_phone is None
            and not self.attribute_equals
        ):
            raise ValueError(
                "a condition needs at least one test: consent, email_valid, has_phone or "
                "attribute_equals"
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
            parts.append(("(COALESCE(c.phone, '') <> '') = ?", [int(node.has_phone)]))
        for key, value in (node.attribute_equals or {}).items():
            parts.append(sql.attribute_equals(key, value))
        return sql.all_of([text for text, _ in parts]), [p for _, own in parts for p in own]

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        assert isinstance(node, ConditionNode)
        said = []
        if node.consent is not None:
            said.append(f"consent {facts.consents.get(node.consent.channel, 'never_subscribed')}")
        if node.email_valid is not None:
            said.append("valid email" if facts.customer["email_valid"] else "invalid email")
        if node.has_phone is not None:
            said.append("has a phone" if facts.customer["phone"] else "no phone")
        if node.attribute_equals:
            attrs = facts.attributes
            said += [f"{k} = {attrs.get(k)!r}" for k in node.attribute_equals]
        return f"{', '.join(said)} {arrow(label)}"


TYPE = Condition()
