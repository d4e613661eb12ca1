"""Evaluate a day set-at-a-time: every customer's path, the allocation ranking, in temp tables.

Temp tables (connection-private, never in the store file):
- ``engine_paths(id, json, last_node, last_label, tier)``: the scenario's paths;
- ``engine_flow1(customer_id, path)``: every customer's stage-1 path;
- ``engine_flow2(customer_id, path, tier, rank, is_new)``: customers at the allocation, in
  rank order, with their stage-2 paths.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from warmup.addresses import international
from warmup.engagement.ranking import prepare_scores
from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.engine.nodes import register_sql_functions
from warmup.engine.walk import FlowSql, Timeline
from warmup.mailboxes.allocation import (
    GroupAllocation,
    count_groups,
    group_caps,
    plan_groups,
)

log = logging.getLogger("warmup.engine")


@dataclass
class Evaluation:
    flow: FlowSql
    timeline: Timeline
    stage1: tuple[str, list[object]]
    stage2: dict[int, tuple[str, list[object]]]
    # customers per final path id (stage-1 ends, stage-2 paths; pending ones before allocation)
    counts: dict[int, int] = field(default_factory=dict)
    allocated: bool = False
    eligible: int = 0
    limit: int = 0
    # per mailbox provider group (warmup.mailboxes); None: the plan has no groups
    groups: GroupAllocation | None = None

    @property
    def new(self) -> int:
        """Customers the allocation gave the new provider (fewer than the limit when a
        mailbox group's cap left slots unused)."""
        if self.groups is not None and self.allocated:
            return self.groups.new
        return min(self.limit, self.eligible)

    @property
    def resolved(self) -> bool:
        """Every customer's path is known (the allocation ran, or the flow has none)."""
        return self.allocated or not self.flow.pending_paths()


def rank_hash(plan_name: str) -> Callable[[str], int]:
    """Stable tie-break of (plan, email): the same store and plan always rank alike."""
    # a copy of the prefix's state costs less than hashing the prefix again for every email
    # (bound once: the ranking calls this for every customer it ranks)
    copy = hashlib.blake2b(f"{plan_name}\x00".encode(), digest_size=7).copy
    from_bytes = int.from_bytes

    def digest(email: str) -> int:
        state = copy()
        state.update(email.encode())
        return from_bytes(state.digest())

    return digest


def prepare(ctx: DayContext) -> Evaluation:
    """The day's paths (all of them, stage 2 included), their SQL and timeline; no data read."""
    flow = FlowSql(ctx)
    stage1 = flow.stage1()
    stage2 = {p.id: flow.stage2(p, "r.is_new = 1") for p in flow.pending_paths()}
    return Evaluation(flow, Timeline(flow), stage1, stage2)


def drop_temp(ctx: DayContext) -> None:
    sql.drop_temp(ctx.conn)


def evaluate(ctx: DayContext, result: Evaluation) -> None:
    """Stage 1 for everyone; ranking and stage 2 too once the allocation is due."""
    conn = ctx.conn
    flow, timeline = result.flow, result.timeline
    expr1, params1 = result.stage1
    drop_temp(ctx)
    register_sql_functions(ctx, rank=rank_hash(ctx.plan.name), intl=_international)
    sql.create_paths(
        conn,
        [
            (p.id, p.to_json(), p.last, p.labels[-1], timeline.tiers.get(p.id))
            for p in flow.paths.paths
        ],
    )
    sql.evaluate_stage1(conn, expr1, params1)
    result.counts = sql.path_counts(conn, "engine_flow1")
    log.info(
        "day %s: evaluated %s customers over %s paths",
        ctx.day,
        sum(result.counts.values()),
        len(result.counts),
    )
    pending = [p.id for p in flow.pending_paths()]
    due = timeline.allocation_at
    if not pending or due is None or not ctx.reached(due):
        return
    _rank(ctx, result, pending, result.stage2)


def _international(email: str | None) -> int:
    # A non-ASCII local part needs SMTPUTF8 end to end and strict Klaviyo accounts refuse it in
    # the exclusion list: such customers stay on Klaviyo (warmup.addresses).
    return int(email is not None and international(email))


def _rank(
    ctx: DayContext,
    result: Evaluation,
    pending: list[int],
    stage2: dict[int, tuple[str, list[object]]],
) -> None:
    conn = ctx.conn
    marks = ",".join(str(p) for p in pending)
    result.eligible = sum(result.counts.get(p, 0) for p in pending)
    result.eligible -= sql.count_international(conn, marks)
    result.limit = ctx.settings.limit_for(result.eligible)
    if ctx.volume_day is not None:
        # a hold or rollback repeats an earlier day's volume, never more than the day's own
        scheduled = ctx.plan.schedule.day(ctx.day).limit_for(result.eligible)
        result.limit = min(result.limit, scheduled)
    result.groups = plan_groups(ctx.loaded, conn, ctx.day, ctx.volume_day or ctx.day, result.limit)
    cases, params = [], []
    for path_id, (then, own) in stage2.items():
        cases.append(f"WHEN {path_id} THEN {then}")
        params += own
    # Post-allocation branches are rare: join the customer row only when one needs it.
    join = sql.CUSTOMER_JOIN.format(alias="r") if result.flow.stage2_reads_customer else ""
    groups, eligible = result.groups, result.eligible
    sql.rank_stage2(
        conn,
        marks,
        cases,
        params,
        limit=int(result.limit),
        join=join,
        caps=group_caps(groups),
        scored=prepare_scores(conn, ctx.plan.engagement, ctx.start),
    )
    if groups is not None:
        count_groups(conn, groups, eligible, marks)
    for path_id in pending:
        result.counts.pop(path_id, None)
    result.counts.update(sql.path_counts(conn, "engine_flow2"))
    result.allocated = True
    log.info(
        "day %s: allocation ranked %s eligible, new-provider limit %s",
        ctx.day,
        result.eligible,
        result.limit,
    )
