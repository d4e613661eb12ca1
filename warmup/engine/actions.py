"""Action nodes (webhook, email, consent_reject…) as durable effects, written set-at-a-time.

Each action is one ``INSERT OR IGNORE`` keyed ``plan:day:node:customer``, so writing it again
after a crash adds nothing. The rows come from the day's frozen ``journeys``: only customers
whose path reaches the node by now. What a node writes is its type's ``write_day`` (the outbox
contract of each is in its module under ``warmup.engine.nodes``).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from warmup.engine.context import DayContext
from warmup.engine.journeys import journeys_on
from warmup.engine.nodes import type_of
from warmup.engine.nodes.base import Due, Reached
from warmup.engine.paths import Path
from warmup.engine.walk import FlowSql, Timeline
from warmup.store import now_iso

log = logging.getLogger("warmup.engine")


def due_steps(
    ctx: DayContext, flow: FlowSql, timeline: Timeline, paths: list[Path]
) -> dict[Due, list[Path]]:
    """Action nodes reached by now, grouped by what their SQL needs."""
    steps: dict[Due, list[Path]] = defaultdict(list)
    for path in paths:
        times = timeline.times(path)
        gate: str | None = None
        for index, node_id in enumerate(path.nodes):
            node = flow.nodes[node_id]
            kind = type_of(node)
            arrive = times[index][0]
            if not ctx.reached(arrive):
                break
            if kind.is_gate(node):
                gate = node_id
            if kind.writes(node):
                not_before = now_iso(arrive) if arrive > ctx.start else None
                after = gate if kind.waits_for_gate(node) else None
                steps[Due(node_id, not_before, after)].append(path)
            if not ctx.reached(times[index][1]):
                break
    return steps


def write_actions(
    ctx: DayContext, flow: FlowSql, timeline: Timeline, paths: list[Path], now: str
) -> dict[str, int]:
    """Write every due action; returns rows newly written per node."""
    written: dict[str, int] = defaultdict(int)
    for due, due_paths in sorted(
        due_steps(ctx, flow, timeline, paths).items(),
        key=lambda item: (item[0].node_id, item[0].not_before or ""),
    ):
        node = flow.nodes[due.node_id]
        where, params = journeys_on(ctx, due_paths)
        written[node.id] += type_of(node).write_day(node, Reached(ctx, due, where, params, now))
    for node_id, count in written.items():
        log.info("day %s: node %s wrote %s outbox rows", ctx.day, node_id, count)
    return dict(written)
