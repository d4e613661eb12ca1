"""Turn the scenario graph into one SQL CASE expression that yields each customer's path id.

Walking the graph from the date trigger, every branch node becomes ``CASE WHEN <predicate>
THEN <yes subtree> ELSE <no subtree> END`` and every place a walk stops becomes a path id
registered in the ``PathSet``. Parameters are collected in text order, so the expression and its
parameter list always line up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.engine.nodes import type_of
from warmup.engine.paths import PENDING, UNSAFE, Path, PathSet, allocation_node, date_trigger
from warmup.plan.scenario import Node

Walker = Callable[[str, tuple[str, ...], tuple[str, ...], list[Any]], str]


class FlowSql:
    """Builds the stage-1 and stage-2 CASE expressions of one day and owns its paths."""

    def __init__(self, ctx: DayContext) -> None:
        self.ctx = ctx
        self.scenario = ctx.loaded.scenario
        self.nodes = self.scenario.by_id
        self.paths = PathSet(self.scenario)
        self.allocation = allocation_node(self.scenario)
        # Whether any stage-2 expression tests the customer row (a branch after the allocation).
        self.stage2_reads_customer = False
        self._in_stage2 = False

    def stage1(self) -> tuple[str, list[Any]]:
        """Path id of every customer from the date trigger up to the allocation (or an end)."""
        trigger = date_trigger(self.scenario)
        params: list[Any] = []
        if trigger is None:
            return "NULL", params
        return self._walk(trigger.id, (), (), params), params

    def stage2(self, pending: Path, is_new_sql: str) -> tuple[str, list[Any]]:
        """From a customer's stage-1 path through the allocation's yes (new) or no (Klaviyo)."""
        assert self.allocation is not None
        params: list[Any] = []
        labels = pending.labels[:-1]
        self._in_stage2 = True
        yes = self._follow(self.allocation, "yes", pending.nodes, labels, params)
        no = self._follow(self.allocation, "no", pending.nodes, labels, params)
        self._in_stage2 = False
        return sql.case(is_new_sql, yes, no), params

    def pending_paths(self) -> list[Path]:
        return [
            p
            for p in self.paths.paths
            if self.allocation is not None
            and p.last == self.allocation.id
            and p.labels[-1] == PENDING
        ]

    def _walk(
        self, node_id: str, nodes: tuple[str, ...], labels: tuple[str, ...], params: list[Any]
    ) -> str:
        node = self.nodes[node_id]
        kind = type_of(node)
        here = (*nodes, node_id)
        if kind.is_allocation(node):
            pending = self.paths.add(here, (*labels, PENDING))
            unsafe = self.paths.add(here, (*labels, UNSAFE))
            return sql.case(sql.SAFE, str(pending), str(unsafe))
        test = kind.predicate(node, self.ctx)
        if test is not None:
            params.extend(test[1])
            self.stage2_reads_customer |= self._in_stage2
            yes = self._follow(node, "yes", here, labels, params)
            no = self._follow(node, "no", here, labels, params)
            return sql.case(test[0], yes, no)
        return self._follow(node, "next", here, labels, params)

    def _follow(
        self,
        node: Node,
        label: str,
        here: tuple[str, ...],
        labels: tuple[str, ...],
        params: list[Any],
    ) -> str:
        target = node.edges().get(label)
        if target is None:
            # The walk ends here; the label says which missing edge ended it.
            return str(self.paths.add(here, (*labels, label)))
        return self._walk(target, here, (*labels, label), params)


class Timeline:
    """When a customer on a path arrives at and leaves each node of the day.

    Everyone enters at midnight; a ``wait`` holds until its due time; the allocation node holds
    everyone until the last stage-1 path has arrived at it, so the allocation sees all of them
    and ranks earlier arrivals (earlier tiers) first.
    """

    def __init__(self, flow: FlowSql) -> None:
        self.flow = flow
        self.ctx = flow.ctx
        self.allocation_at: datetime | None = None
        arrivals = [self._times(p)[-1][0] for p in flow.pending_paths()]
        if arrivals:
            self.allocation_at = max(arrivals)
        # Tier = rank of a stage-1 path's arrival time at the allocation (0 first).
        ordered = sorted(set(arrivals))
        self.tiers = {p.id: ordered.index(self._times(p)[-1][0]) for p in flow.pending_paths()}

    def _times(self, path: Path) -> list[tuple[datetime, datetime]]:
        moment = self.ctx.start
        out: list[tuple[datetime, datetime]] = []
        allocation = self.flow.allocation
        for index, node_id in enumerate(path.nodes):
            node = self.flow.nodes[node_id]
            leave = type_of(node).leave_at(node, self.ctx, moment)
            if (
                allocation is not None
                and node_id == allocation.id
                and path.labels[index] != UNSAFE
                and self.allocation_at is not None
            ):
                leave = max(moment, self.allocation_at)
            out.append((moment, leave))
            moment = leave
        return out

    def times(self, path: Path) -> list[tuple[datetime, datetime]]:
        """(arrive, leave) per node of the path."""
        return self._times(path)

    def parked_at(self, path: Path) -> tuple[int, datetime] | None:
        """Index and due time of the node the path is waiting at now, if any."""
        for index, (arrive, leave) in enumerate(self._times(path)):
            if not self.ctx.reached(arrive):
                return None  # cannot happen: arrival is the previous node's leave
            if not self.ctx.reached(leave):
                return index, leave
        return None

    def latest(self) -> datetime:
        """When the whole day is done: the last leave time over every path."""
        last = self.ctx.start
        for path in self.flow.paths.paths:
            for _, leave in self._times(path):
                last = max(last, leave)
        return last
