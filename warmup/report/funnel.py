"""A day's funnel from the frozen ``journeys``: how many customers reached each node, and how
many took each edge."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from warmup.plan.scenario import Scenario
from warmup.store import Store, journeys


@dataclass
class Funnel:
    day: int
    reached: Counter[str] = field(default_factory=Counter)
    # (source, target) → customers
    taken: Counter[tuple[str, str]] = field(default_factory=Counter)
    parked: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    def edges(self, scenario: Scenario) -> list[tuple[str, str, str, int]]:
        """Every edge of the scenario with its label and count (0 when nobody took it)."""
        return [
            (node.id, target, label, self.taken[(node.id, target)])
            for node in scenario.nodes
            for label, target in node.edges().items()
        ]


def day_funnel(store: Store, day: int, now: str) -> Funnel:
    """Counts per node for ``day``. A customer parked at a wait has reached it, not the nodes
    after it, even though the frozen path already names them; ``now`` (UTC ISO) tells who is
    still parked."""
    funnel = Funnel(day)
    for path_json, node, outcome, count in journeys.by_path_and_place(store.backend, day):
        nodes = [str(n) for n in json.loads(path_json)]
        if node is not None and node in nodes:
            nodes = nodes[: nodes.index(node) + 1]
        for node_id in nodes:
            funnel.reached[node_id] += count
        for pair in pairwise(nodes):
            funnel.taken[pair] += count
        if node is not None and node != (nodes[-1] if nodes else None):
            funnel.reached[node] += count
        funnel.outcomes[str(outcome or "in progress")] += count
    for node, count in journeys.parked_by_node(store.backend, day, now):
        funnel.parked[str(node)] += count
    return funnel


def latest_day(store: Store) -> int | None:
    return journeys.latest_day(store.backend)
