"""The day's journeys and allocations: written once, frozen, read back on every re-run.

``journeys`` holds, per customer and day, the path walked (``path_id``: one of the day's few
enumerated paths, whose node ids and final edge label are stored once in ``journey_paths``;
rows from before migration 040 hold them in ``path`` and ``last_label``; the view
``journey_rows`` reads both alike), where the customer is now (``node``; ``due_at`` when parked
at a wait), the allocation ``rank`` and an ``outcome``:

- ``ended``: the walk ended at a missing edge before the allocation (stays with Klaviyo);
- ``never_allocated``: reached the allocation but unsubscribed, suppressed or invalid email;
- ``new`` / ``klaviyo``: the allocation gave the customer to that provider;
- ``skipped``: allocated to the new provider, but no longer mailable when the email was written.
"""

from __future__ import annotations

import logging
from typing import Any

from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.engine.evaluate import Evaluation
from warmup.engine.paths import UNSAFE, Path
from warmup.engine.walk import FlowSql, Timeline
from warmup.mailboxes.allocation import frozen_groups, record_groups
from warmup.store import days, journeys, now_iso

log = logging.getLogger("warmup.engine")


def path_outcome(flow: FlowSql, path: Path) -> str:
    allocation = flow.allocation
    if allocation is not None and allocation.id in path.nodes:
        label = path.labels[path.nodes.index(allocation.id)]
        return {UNSAFE: "never_allocated", "yes": "new", "no": "klaviyo"}.get(label, "ended")
    return "ended"


def path_state(timeline: Timeline, path: Path) -> tuple[str, str | None]:
    """(node now, due time if parked there)."""
    parked = timeline.parked_at(path)
    if parked is None:
        return path.last, None
    index, due = parked
    return path.nodes[index], now_iso(due)


def final_paths(ev: Evaluation) -> list[Path]:
    return [ev.flow.paths[path_id] for path_id in sorted(ev.counts)]


def persist(ctx: DayContext, ev: Evaluation) -> None:
    """Freeze the allocation: allocations, journeys and the day's counts (inside the caller's
    transaction, so a kill leaves all of it or none)."""
    conn = ctx.conn
    states = [
        (p.id, *path_state(ev.timeline, p), path_outcome(ev.flow, p)) for p in ev.flow.paths.paths
    ]
    pending = ",".join(str(p.id) for p in ev.flow.pending_paths()) or "-1"
    sql.freeze_stage1(conn, ctx.day, states, pending)
    new = klaviyo = 0
    if ev.allocated:
        sql.freeze_allocation(conn, ctx.day)
        record_groups(conn, ctx.day, ev.groups)
        new = ev.new
        klaviyo = ev.eligible - new
    days.record_allocation(conn, ctx.day, limit=ev.limit, new=new, klaviyo=klaviyo)
    log.info(
        "day %s: allocation frozen: new %s, klaviyo %s (limit %s)", ctx.day, new, klaviyo, ev.limit
    )


def load_frozen(ctx: DayContext, ev: Evaluation) -> None:
    """Counts per path from the frozen journeys (a re-run never re-evaluates a frozen day)."""
    by_key = {(p.to_json(), p.labels[-1]): p for p in ev.flow.paths.paths}
    ev.counts = {}
    for path_json, label, count in journeys.path_counts(ctx.conn, ctx.day):
        path = by_key.get((path_json, label))
        if path is None:
            log.warning(
                "day %s: %s journeys follow a path the scenario no longer has: %s",
                ctx.day,
                count,
                path_json,
            )
            continue
        ev.counts[path.id] = count
    ev.limit, new, klaviyo = days.allocation(ctx.conn, ctx.day)
    ev.eligible = new + klaviyo
    ev.groups = frozen_groups(ctx.conn, ctx.day)
    ev.allocated = True


def journeys_on(ctx: DayContext, paths: list[Path], alias: str = "j") -> tuple[str, list[Any]]:
    """SQL matching the day's ``journeys`` rows (alias ``alias``) on any of ``paths``: by the
    stored path id, or by the node list in rows written before path ids (migration 040)."""
    stored = journeys.stored_paths(ctx.conn, ctx.day)
    ids = sorted({i for p in paths for i in stored.get((p.to_json(), p.labels[-1]), [])})
    by_list = " OR ".join(f"({alias}.path = ? AND {alias}.last_label = ?)" for _ in paths)
    params: list[Any] = []
    for path in paths:
        params += [path.to_json(), path.labels[-1]]
    marks = ",".join(str(i) for i in ids)
    return (
        f"({alias}.path_id IN ({marks}) OR ({alias}.path_id IS NULL AND ({by_list or '0'})))",
        params,
    )


def refresh_states(ctx: DayContext, ev: Evaluation) -> None:
    """Move parked customers on: node and due time per path as of now."""
    for path in final_paths(ev):
        node, due = path_state(ev.timeline, path)
        where, params = journeys_on(ctx, [path], alias="journeys")
        sql.move_journeys(ctx.conn, ctx.day, where, params, node=node, due_at=due)
