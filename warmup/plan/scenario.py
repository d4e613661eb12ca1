"""Pydantic models of a scenario file: the node graph a plan runs every sending day.

A scenario is a list of nodes; each node names the node(s) that follow it. Node ids are strings
(the shipped Bloomreach variants keep the seed's numbers: ``"7"``, ``"19"``, ``"225"``…).
Branching nodes (``condition``, ``audience``…) have ``yes`` and ``no``; the others have ``next``.
A missing edge means the path ends there: the customer stays with Klaviyo for the day.

Each node type's model lives in its own module of the node registry (``warmup.engine.nodes``);
this module assembles them into the scenario and re-exports them for the plan's checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from pydantic import Field

from warmup.engine.nodes import NODE_TYPES, node_union
from warmup.engine.nodes.audience import AudienceNode
from warmup.engine.nodes.base import (
    BranchNode,
    LinearNode,
    NodeBase,
    NodeId,
    StrictModel,
    parse_duration,
)
from warmup.engine.nodes.condition import ConditionNode, ConsentPredicate, ConsentStatus
from warmup.engine.nodes.consent_reject import ConsentRejectNode
from warmup.engine.nodes.email import EmailNode
from warmup.engine.nodes.trigger import TriggerNode
from warmup.engine.nodes.wait import WaitNode
from warmup.engine.nodes.webhook import WebhookNode

if TYPE_CHECKING:
    Node: TypeAlias = NodeBase
else:
    Node = node_union()


class Scenario(StrictModel):
    name: str = Field(min_length=1)
    description: str | None = None
    nodes: list[Node] = Field(min_length=1)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    def triggers(self) -> list[TriggerNode]:
        return [node for node in self.nodes if isinstance(node, TriggerNode)]


__all__ = [
    "NODE_TYPES",
    "AudienceNode",
    "BranchNode",
    "ConditionNode",
    "ConsentPredicate",
    "ConsentRejectNode",
    "ConsentStatus",
    "EmailNode",
    "LinearNode",
    "Node",
    "NodeBase",
    "NodeId",
    "Scenario",
    "StrictModel",
    "TriggerNode",
    "WaitNode",
    "WebhookNode",
    "parse_duration",
]
