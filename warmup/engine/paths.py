"""A day's date flow as paths: every way one customer can walk the scenario graph.

Linear nodes have one ``next`` and branch nodes take ``yes`` or ``no``, so each customer walks
exactly one path through the (acyclic) graph. The engine enumerates those paths up front — a few
per scenario — and evaluates the day by giving every customer a path id in one SQL pass
(``warmup.engine.walk``, through ``warmup.engine.sql``), instead of pushing customers through
nodes one at a time.

The allocation node splits the walk in two: paths up to it are *stage 1* (their last label is
empty while the rank is unknown); each one continues as a *stage 2* path through ``yes`` (new
provider) or ``no`` (stays with Klaviyo).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from warmup.engine.nodes import type_of
from warmup.engine.nodes.base import PENDING, UNSAFE
from warmup.plan.scenario import Node, Scenario, TriggerNode

__all__ = ["PENDING", "UNSAFE", "Path", "PathSet", "allocation_node", "date_trigger"]


@dataclass(frozen=True)
class Path:
    id: int
    nodes: tuple[str, ...]
    # Label of the edge taken out of each node: next/yes/no, "" when the walk stops there.
    labels: tuple[str, ...]

    @property
    def last(self) -> str:
        return self.nodes[-1]

    def to_json(self) -> str:
        """What ``journey_paths.path`` stores: the node ids walked, in order."""
        return json.dumps(list(self.nodes))


@dataclass
class PathSet:
    scenario: Scenario
    paths: list[Path] = field(default_factory=list)
    _index: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = field(default_factory=dict)

    def add(self, nodes: tuple[str, ...], labels: tuple[str, ...]) -> int:
        key = (nodes, labels)
        if key not in self._index:
            self._index[key] = len(self.paths)
            self.paths.append(Path(len(self.paths), nodes, labels))
        return self._index[key]

    def __getitem__(self, path_id: int) -> Path:
        return self.paths[path_id]

    def by_json(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for path in self.paths:
            out.setdefault(path.to_json(), []).append(path)
        return out


def date_trigger(scenario: Scenario) -> TriggerNode | None:
    for node in scenario.triggers():
        if type_of(node).is_date_trigger(node):
            return node
    return None


def allocation_node(scenario: Scenario) -> Node | None:
    for node in scenario.nodes:
        if type_of(node).is_allocation(node):
            return node
    return None


def label_between(node: Node, target: str) -> str:
    for label, dest in node.edges().items():
        if dest == target:
            return label
    return ""
