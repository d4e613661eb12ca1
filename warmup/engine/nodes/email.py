"""``email``: send the day's (or a named) template through the new provider.

Outbox contract: kind='email', provider='new', payload ``{"template": "day-03"}`` (stored once
for the day and node: read ``outbox_rows``; the address is read from ``customers`` when
sent), ``after_key`` = the same customer's exclusion-list webhook row of the day (when the path
has one), ``not_before`` = when the customer reached the
node if that was after midnight. Only customers allocated to the new provider today whose
consent and address still allow mail at the moment of writing get a row; the others' journeys
become ``skipped``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from warmup.engine import sql
from warmup.engine.nodes.base import Drawing, Facts, LinearNode, NodeBase, NodeType, Reached
from warmup.engine.nodes.webhook import action_reason

if TYPE_CHECKING:
    from warmup.engine.context import DayContext


class EmailNode(LinearNode):
    """Send an email rendered from ``templates/email/<template>.j2`` through ``provider``.
    ``template: day`` takes the day's template from the plan's schedule."""

    type: Literal["email"]
    template: str = "day"
    provider: Literal["new"] = "new"


def email_template(ctx: DayContext, node: EmailNode) -> str:
    return (ctx.template or "") if node.template == "day" else node.template


class Email(NodeType):
    model = EmailNode
    drawing = Drawing(fill="#f9e79f")

    def writes(self, node: NodeBase) -> bool:
        return True

    def waits_for_gate(self, node: NodeBase) -> bool:
        return True

    def write_day(self, node: NodeBase, reached: Reached) -> int:
        assert isinstance(node, EmailNode)
        ctx, due = reached.ctx, reached.due
        key_prefix = ctx.key_prefix(node.id)
        written = sql.insert_emails(
            ctx.conn,
            node_id=node.id,
            key_prefix=key_prefix,
            day=ctx.day,
            template=email_template(ctx, node),
            where=reached.where,
            params=reached.params,
            not_before=due.not_before,
            after=ctx.key_prefix(due.after_node) if due.after_node else None,
            now=reached.now,
        )
        # Allocated but no longer mailable (unsubscribed since the allocation): say so. When the
        # insert wrote a row for every allocated customer on these paths, nobody was skipped.
        if written != sql.allocated_on_paths(ctx.conn, ctx.day, reached.where, reached.params):
            sql.mark_unmailed_skipped(ctx.conn, ctx.day, reached.where, reached.params, key_prefix)
        return written

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        return action_reason(node, facts)


TYPE = Email()
