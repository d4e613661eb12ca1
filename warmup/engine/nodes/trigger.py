"""``trigger``: where a flow starts — every customer at midnight of each sending day
(``on: date``), or the customer an event names (``on: event``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from warmup.engine.nodes.base import Drawing, LinearNode, NodeBase, NodeType


class TriggerNode(LinearNode):
    """Entry point. ``on: date`` enters every customer of the store at midnight (plan timezone)
    of each sending day; ``on: event`` enters the customer an event names (``unsubscribed``,
    ``complained``...)."""

    type: Literal["trigger"]
    on: Literal["date", "event"] = "date"
    events: list[Literal["unsubscribed", "complained", "hard_bounced"]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _events_only_for_event_triggers(self) -> TriggerNode:
        if self.on == "event" and not self.events:
            raise ValueError("an `on: event` trigger needs `events:`, e.g. [unsubscribed]")
        if self.on == "date" and self.events:
            raise ValueError(
                "`events:` belongs to `on: event` triggers — remove it or set on: event"
            )
        return self


class Trigger(NodeType):
    model = TriggerNode
    drawing = Drawing(mermaid=('(["', '"])'), dot="oval", fill="#d6eaf8")

    def is_date_trigger(self, node: NodeBase) -> bool:
        return isinstance(node, TriggerNode) and node.on == "date"


TYPE = Trigger()
