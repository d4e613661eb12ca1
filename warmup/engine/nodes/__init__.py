"""The node types a scenario may use: a closed registry, one module per type.

Each module holds the type's model (with its checks) and a ``NodeType`` object that says how it
routes, how long it holds customers, what it writes, how it explains a customer and how it is
drawn (``warmup.engine.nodes.base``). The set-based evaluation, the event walker, the explainer
and the diagrams look a node's behaviour up here and never switch on its type.

Add a node type: write ``warmup/engine/nodes/<type>.py`` (model + ``TYPE``), add it to
``REGISTRY`` below, test it in ``tests/engine/nodes/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from warmup.engine.nodes import (
    audience,
    condition,
    consent_reject,
    email,
    split,
    trigger,
    wait,
    webhook,
)
from warmup.engine.nodes.base import NodeBase, NodeType
from warmup.engine.sql import fill_python_values

if TYPE_CHECKING:
    from warmup.engine.context import DayContext

REGISTRY: dict[str, NodeType] = {
    kind.name: kind
    for kind in (
        trigger.TYPE,
        condition.TYPE,
        audience.TYPE,
        wait.TYPE,
        webhook.TYPE,
        email.TYPE,
        consent_reject.TYPE,
        split.TYPE,
    )
}
NODE_TYPES = tuple(REGISTRY)


def type_of(node: NodeBase) -> NodeType:
    """The registry entry of a node (every validated node has one: its model came from here)."""
    return REGISTRY[node.type]


def register_sql_functions(
    ctx: DayContext,
    *,
    rank: Callable[[str], int] | None = None,
    intl: Callable[[str | None], int] | None = None,
    customers: Sequence[int] | None = None,
) -> None:
    """Give the day's connection the SQL functions the node types' tests call, and the
    ranking's ``warmup_rank_hash`` (``rank``) and ``warmup_international`` (``intl``).

    SQLite calls them as Python functions. PostgreSQL runs no Python: their values for every
    customer (or ``customers``) are computed here and read from temp tables
    (engine.sql.fill_python_values), so both engines decide alike."""
    if ctx.conn.dialect != "postgresql":
        conn = ctx.conn.conn
        if rank is not None:
            conn.create_function("warmup_rank_hash", 1, rank, deterministic=True)
        if intl is not None:
            conn.create_function("warmup_international", 1, intl, deterministic=True)
        for kind in REGISTRY.values():
            for name, arity, function in kind.sql_functions(ctx):
                conn.create_function(name, arity, function, deterministic=True)
        return
    values = [
        (name, salt, function)
        for node in ctx.loaded.scenario.nodes
        for name, salt, function in type_of(node).python_values(node, ctx)
    ]
    fill_python_values(
        ctx.conn,
        values,
        rank=rank,
        intl=intl or (lambda _email: 0),
        customers=customers,
    )


def node_union() -> Any:
    """The discriminated union the scenario model validates each node with."""
    models = tuple(kind.model for kind in REGISTRY.values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


__all__ = [
    "NODE_TYPES",
    "REGISTRY",
    "NodeBase",
    "NodeType",
    "node_union",
    "register_sql_functions",
    "type_of",
]
