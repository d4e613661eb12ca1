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

from warmup.engine.context import DayContext
from warmup.engine.evaluate import Evaluation
from warmup.engine.paths import UNSAFE, Path
from warmup.engine.walk import FlowSql, Timeline, as_utc_iso
from warmup.mailboxes.allocation import frozen_groups, record_groups

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
    return path.nodes[index], as_utc_iso(due)


def final_paths(ev: Evaluation) -> list[Path]:
    return [ev.flow.paths[path_id] for path_id in sorted(ev.counts)]


def persist(ctx: DayContext, ev: Evaluation) -> None:
    """Freeze the allocation: allocations, journeys and the day's counts (inside the caller's
    transaction, so a kill leaves all of it or none)."""
    conn = ctx.conn
    conn.execute("DROP TABLE IF EXISTS temp.engine_state")
    conn.execute(
        "CREATE TEMP TABLE engine_state (path INTEGER PRIMARY KEY, node TEXT, "
        "due_at TEXT, outcome TEXT)"
    )
    conn.executemany(
        "INSERT INTO engine_state VALUES (?, ?, ?, ?)",
        [
            (p.id, *path_state(ev.timeline, p), path_outcome(ev.flow, p))
            for p in ev.flow.paths.paths
        ],
    )
    # The day's paths once; each journey names its path by id (see migration 040).
    conn.execute("DELETE FROM journey_paths WHERE day = ?", (ctx.day,))
    conn.execute(
        "INSERT INTO journey_paths (day, id, path, last_label) "
        "SELECT ?, id, json, last_label FROM engine_paths",
        [ctx.day],
    )
    pending = ",".join(str(p.id) for p in ev.flow.pending_paths()) or "-1"
    # In customer order: the rows append to the end of the (day, customer_id) B-tree instead
    # of landing at random pages, as they would in rank order.
    select = (
        "SELECT ?, f.customer_id, f.path, s.node, s.due_at, s.outcome, {rank} "
        "FROM {table} f JOIN engine_state s ON s.path = f.path"
    )
    columns = "(day, customer_id, path_id, node, due_at, outcome, rank)"
    conn.execute(
        f"INSERT OR REPLACE INTO journeys {columns} "
        + select.format(rank="NULL", table="engine_flow1")
        + f" WHERE f.path NOT IN ({pending}) ORDER BY f.customer_id",
        [ctx.day],
    )
    new = klaviyo = 0
    if ev.allocated:
        conn.execute(
            f"INSERT OR REPLACE INTO journeys {columns} "
            + select.format(rank="f.rank", table="engine_flow2")
            + " ORDER BY f.customer_id",
            [ctx.day],
        )
        conn.execute(
            "INSERT OR REPLACE INTO allocations (day, customer_id, provider, tier, grp) "
            "SELECT ?, customer_id, CASE WHEN is_new THEN 'new' ELSE 'klaviyo' END, "
            "tier, grp FROM engine_flow2 ORDER BY customer_id",
            [ctx.day],
        )
        record_groups(conn, ctx.day, ev.groups)
        new = ev.new
        klaviyo = ev.eligible - new
    conn.execute(
        "UPDATE days SET new_limit = ?, new_allocated = ?, klaviyo_allocated = ? WHERE day = ?",
        (ev.limit, new, klaviyo, ctx.day),
    )
    log.info(
        "day %s: allocation frozen: new %s, klaviyo %s (limit %s)", ctx.day, new, klaviyo, ev.limit
    )


def load_frozen(ctx: DayContext, ev: Evaluation) -> None:
    """Counts per path from the frozen journeys (a re-run never re-evaluates a frozen day)."""
    by_key = {(p.to_json(), p.labels[-1]): p for p in ev.flow.paths.paths}
    ev.counts = {}
    for path_json, label, count in ctx.conn.execute(
        "SELECT path, last_label, count(*) FROM journey_rows WHERE day = ? "
        "GROUP BY path, last_label",
        (ctx.day,),
    ):
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
    row = ctx.conn.execute(
        "SELECT new_limit, new_allocated, klaviyo_allocated FROM days WHERE day = ?", (ctx.day,)
    ).fetchone()
    ev.limit = int(row[0] or 0)
    ev.eligible = int(row[1] or 0) + int(row[2] or 0)
    ev.groups = frozen_groups(ctx.conn, ctx.day)
    ev.allocated = True


def journeys_on(ctx: DayContext, paths: list[Path], alias: str = "j") -> tuple[str, list[Any]]:
    """SQL matching the day's ``journeys`` rows (alias ``alias``) on any of ``paths``: by the
    stored path id, or by the node list in rows written before path ids (migration 040)."""
    stored = {
        (str(path_json), label): int(path_id)
        for path_id, path_json, label in ctx.conn.execute(
            "SELECT id, path, last_label FROM journey_paths WHERE day = ?", (ctx.day,)
        )
    }
    ids = [stored[key] for p in paths if (key := (p.to_json(), p.labels[-1])) in stored]
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
        ctx.conn.execute(
            f"UPDATE journeys SET node = ?, due_at = ? WHERE day = ? AND {where} "
            "AND (node IS NOT ? OR due_at IS NOT ?)",
            (node, due, ctx.day, *params, node, due),
        )
