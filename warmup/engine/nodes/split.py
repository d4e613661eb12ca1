"""``split``: a fixed share of the customers who reach it goes down ``yes``, the rest ``no`` —
treatment and control groups.

Who is in which arm is a stable hash of (plan, node id, email): the same person stays in the
same arm every day of the ramp, whatever else changes in the store, and two split nodes of a
scenario cut independently. Renaming the plan or the node reshuffles the arms.

    - {id: treat, type: split, share: 0.1, yes: hook, no: control}   # or percent: 10
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from warmup.engine.nodes.base import (
    BranchNode,
    Drawing,
    Facts,
    NodeBase,
    NodeType,
    PythonValue,
    SqlFunction,
    SqlPart,
    arrow,
)
from warmup.engine.sql import python_value

if TYPE_CHECKING:
    from warmup.engine.context import DayContext


class SplitNode(BranchNode):
    """Send ``share`` (0–1) or ``percent`` (0–100) of the customers down ``yes``, by a stable
    hash of the customer, so each one keeps their arm all ramp long."""

    type: Literal["split"]
    share: float | None = Field(default=None, gt=0, lt=1)
    percent: float | None = Field(default=None, gt=0, lt=100)

    @model_validator(mode="after")
    def _one_share(self) -> SplitNode:
        if (self.share is None) == (self.percent is None):
            raise ValueError("a split needs exactly one of `share:` (like 0.1) or `percent:` (10)")
        return self

    @property
    def fraction(self) -> float:
        return self.share if self.share is not None else float(self.percent or 0) / 100


def bucket(salt: str, email: str | None) -> float | None:
    """Where a customer falls in [0, 1): the same (salt, email) always falls in the same place."""
    if email is None:
        return None
    digest = hashlib.blake2b(f"{salt}\x00{email}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def salt(plan_name: str, node: SplitNode) -> str:
    return f"{plan_name}\x00{node.id}"


class Split(NodeType):
    model = SplitNode
    drawing = Drawing(mermaid=('[/"', '"\\]'), dot="trapezium", fill="#d4e6f1")

    def predicate(self, node: NodeBase, ctx: DayContext) -> SqlPart:
        assert isinstance(node, SplitNode)
        call, params = python_value(ctx.conn, "warmup_split_bucket", salt(ctx.plan.name, node))
        return f"{call} < ?", [*params, node.fraction]

    def sql_functions(self, ctx: DayContext) -> list[SqlFunction]:
        return [("warmup_split_bucket", 2, bucket)]

    def python_values(self, node: NodeBase, ctx: DayContext) -> list[PythonValue]:
        assert isinstance(node, SplitNode)
        return [("warmup_split_bucket", salt(ctx.plan.name, node), bucket)]

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        assert isinstance(node, SplitNode)
        place = bucket(salt(facts.loaded.plan.name, node), facts.customer["email"])
        side = "in" if place is not None and place < node.fraction else "outside"
        return f"{side} the {node.fraction * 100:g}% arm (hash {place or 0:.4f}) {arrow(label)}"


TYPE = Split()
