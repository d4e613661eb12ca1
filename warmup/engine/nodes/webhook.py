"""``webhook``: a Jinja-templated HTTP call to Klaviyo (the exclusion or unsubscribe list), one
outbox row per customer keyed ``plan:day:node:customer`` (``plan:event:<id>:node:customer`` in
an event flow), batched by the dispatcher up to ``batch_size`` customers per request.

Outbox contract: kind='webhook', provider='klaviyo', payload ``{"list", "template",
"batch_size"}`` (alike for every row of a day, so stored once for the day and node: read
``outbox_rows``; the dispatcher reads the profile from ``customers`` when it sends; event-flow
rows carry their own, with a copy of the profile fields).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from warmup.engine import sql
from warmup.engine.nodes.base import (
    Drawing,
    EventVisit,
    Facts,
    LinearNode,
    NodeBase,
    NodeType,
    Reached,
)
from warmup.store import journeys


class WebhookNode(LinearNode):
    """A Jinja-templated HTTP call (``templates/<template>``), batched up to ``batch_size``
    customers per request. ``list`` names which Klaviyo list of the plan it targets."""

    type: Literal["webhook"]
    template: str
    list: Literal["exclusion", "unsubscribe"] | None = None
    batch_size: int = Field(default=1, ge=1, le=10_000)


def _settings(node: WebhookNode) -> dict[str, Any]:
    return {"list": node.list, "template": node.template, "batch_size": node.batch_size}


class Webhook(NodeType):
    model = WebhookNode
    drawing = Drawing(fill="#fadbd8")

    def writes(self, node: NodeBase) -> bool:
        return True

    def is_gate(self, node: NodeBase) -> bool:
        # The exclusion list must hold the customer before the new provider mails them.
        return isinstance(node, WebhookNode) and node.list == "exclusion"

    def write_day(self, node: NodeBase, reached: Reached) -> int:
        assert isinstance(node, WebhookNode)
        ctx = reached.ctx
        return sql.insert_webhooks(
            ctx.conn,
            _settings(node),
            node_id=node.id,
            key_prefix=ctx.key_prefix(node.id),
            day=ctx.day,
            source="FROM (SELECT j.customer_id AS id FROM journeys j "
            f"WHERE j.day = ? AND {reached.where} ORDER BY j.customer_id) c",
            params=[ctx.day, *reached.params],
            not_before=reached.due.not_before,
            now=reached.now,
            with_profile=False,
        )

    def on_event(self, node: NodeBase, visit: EventVisit) -> None:
        assert isinstance(node, WebhookNode)
        ctx = visit.ctx
        sql.insert_webhooks(
            ctx.conn,
            _settings(node),
            node_id=node.id,
            key_prefix=f"{ctx.plan.name}:event:{visit.event_id}:{node.id}:",
            day=ctx.day,
            source="FROM customers c WHERE c.id = ?",
            params=[visit.customer_id],
            not_before=None,
            now=visit.now,
        )

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        return action_reason(node, facts)


def action_reason(node: NodeBase, facts: Facts) -> str:
    """The outbox row a node wrote for the customer that day, or that there is none."""
    row = journeys.action_row(facts.conn, facts.day, node.id, int(facts.customer["id"]))
    if row is None:
        return "no outbox row"
    return f"outbox {row['key']}: {row['status']}"


TYPE = Webhook()
