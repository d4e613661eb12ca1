"""``wait``: hold customers until a time of the day or for a while after they arrive."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from warmup.clock import resolve, show
from warmup.engine.nodes.base import Drawing, Facts, LinearNode, NodeBase, NodeType, parse_duration

if TYPE_CHECKING:
    from warmup.engine.context import DayContext

_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class WaitNode(LinearNode):
    """Park customers until a due time: ``until: send_time`` (the day's send time from the plan),
    ``until: "HH:MM"`` (local time of the day), or ``duration: 5m`` after arrival."""

    type: Literal["wait"]
    until: str | None = None
    duration: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WaitNode:
        if (self.until is None) == (self.duration is None):
            raise ValueError(
                "a wait needs exactly one of `until:` (send_time or HH:MM) or `duration:` (like 5m)"
            )
        if (
            self.until is not None
            and self.until != "send_time"
            and not _LOCAL_TIME.match(self.until)
        ):
            raise ValueError(f'`until: {self.until}` — write send_time or a time like "10:00"')
        if self.duration is not None:
            parse_duration(self.duration)
        return self

    @property
    def delay(self) -> timedelta | None:
        return parse_duration(self.duration) if self.duration else None


class Wait(NodeType):
    model = WaitNode
    drawing = Drawing(mermaid=('[/"', '"/]'), dot="parallelogram", fill="#ebdef0")

    def leave_at(self, node: NodeBase, ctx: DayContext, arrive: datetime) -> datetime:
        assert isinstance(node, WaitNode)
        if node.delay is not None:
            return arrive + node.delay
        hhmm = (
            ctx.plan.schedule.send_time_for(ctx.day)
            if node.until == "send_time"
            else str(node.until)
        )
        # The clock reads the time in the plan's zone as the plan's clock_change says (what
        # plan.calendar.local_time does): node types import nothing of plan/.
        at = resolve(ctx.plan.timezone, ctx.date, hhmm, ctx.plan.schedule.clock_change)
        return max(arrive, at)

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        assert isinstance(node, WaitNode)
        journey = facts.journey
        due = (
            show(journey["due_at"], facts.loaded.plan.timezone)
            if journey["node"] == node.id and journey["due_at"]
            else None
        )
        what = f"until {node.until}" if node.until else f"{node.duration}"
        return f"wait {what}" + (f" — parked until {due}" if due else "")


TYPE = Wait()
