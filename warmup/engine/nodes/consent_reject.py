"""``consent_reject``: the customer's consent on a channel becomes unsubscribed (with a
``consent_changes`` row); no later day allocates them."""

from __future__ import annotations

from typing import Literal

from warmup.engine import sql
from warmup.engine.nodes.base import Drawing, EventVisit, LinearNode, NodeBase, NodeType, Reached


class ConsentRejectNode(LinearNode):
    """The customer's email consent becomes unsubscribed; no later day allocates them."""

    type: Literal["consent_reject"]
    channel: Literal["email", "sms"] = "email"


class ConsentReject(NodeType):
    model = ConsentRejectNode
    drawing = Drawing(fill="#e5e8e8")

    def writes(self, node: NodeBase) -> bool:
        return True

    def write_day(self, node: NodeBase, reached: Reached) -> int:
        assert isinstance(node, ConsentRejectNode)
        ids, params = reached.customer_ids()
        return sql.reject_consent(
            reached.ctx.conn,
            ids,
            params,
            channel=node.channel,
            source=f"scenario:{node.id}",
            now=reached.now,
        )

    def on_event(self, node: NodeBase, visit: EventVisit) -> None:
        assert isinstance(node, ConsentRejectNode)
        sql.reject_consent(
            visit.ctx.conn,
            "SELECT ? AS customer_id",
            [visit.customer_id],
            channel=node.channel,
            source=f"event:{visit.event_id}",
            now=visit.now,
        )


TYPE = ConsentReject()
