"""Per-node counts of a day (in, out per edge, parked) and the graph drawn as a tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warmup.clock import show
from warmup.engine.context import DayContext
from warmup.engine.evaluate import Evaluation
from warmup.engine.paths import PENDING, UNSAFE, date_trigger
from warmup.plan.scenario import Scenario
from warmup.store import now_iso


@dataclass
class NodeCount:
    id: str
    type: str
    title: str | None
    entered: int = 0
    out: dict[str, int] = field(default_factory=dict)
    # Walks that ended here on a missing edge, by label (they stay with Klaviyo today).
    ended: dict[str, int] = field(default_factory=dict)
    parked: int = 0
    due_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "in": self.entered,
            "out": dict(self.out),
            "ended": dict(self.ended),
            "parked": self.parked,
            "due_at": self.due_at,
        }


def count_nodes(ctx: DayContext, ev: Evaluation) -> dict[str, NodeCount]:
    nodes = {n.id: NodeCount(n.id, n.type, n.title) for n in ctx.loaded.scenario.nodes}
    for path_id, count in ev.counts.items():
        path = ev.flow.paths[path_id]
        times = ev.timeline.times(path)
        for index, node_id in enumerate(path.nodes):
            arrive, leave = times[index]
            node = nodes[node_id]
            if not ctx.reached(arrive):
                break
            node.entered += count
            label = path.labels[index]
            if label == PENDING or not ctx.reached(leave):
                node.parked += count
                node.due_at = now_iso(leave)
                break
            if index + 1 < len(path.nodes):
                node.out[label] = node.out.get(label, 0) + count
            else:
                node.ended[label] = node.ended.get(label, 0) + count
    return nodes


_ENDS = {
    UNSAFE: "never allocated (unsubscribed, suppressed or invalid email)",
    "yes": "ends",
    "no": "ends: stays with Klaviyo",
    "next": "done",
}


def draw_tree(scenario: Scenario, counts: dict[str, NodeCount], timezone: str | None = None) -> str:
    """The date flow as an indented tree; a node reached twice is drawn once."""
    trigger = date_trigger(scenario)
    if trigger is None:
        return "(no on-date trigger)"
    lines: list[str] = []
    drawn: set[str] = set()

    def describe(node_id: str) -> str:
        c = counts[node_id]
        text = f"#{c.id} {c.type}"
        if c.title:
            text += f" · {c.title}"
        text += f" · in {c.entered:,}"
        if c.parked:
            due = show(c.due_at, timezone) if timezone and c.due_at else c.due_at
            text += f" · parked {c.parked:,} until {due}"
        return text

    def visit(node_id: str, prefix: str) -> None:
        drawn.add(node_id)
        node = scenario.by_id[node_id]
        c = counts[node_id]
        branches: list[tuple[str, str | None]] = list(node.edges().items())
        labels = {label for label, _ in branches}
        branches += [(label, None) for label in c.ended if label not in labels]
        for i, (label, target) in enumerate(branches):
            last = i == len(branches) - 1
            elbow, indent = ("└─ ", "   ") if last else ("├─ ", "│  ")
            if target is None:
                lines.append(
                    f"{prefix}{elbow}{label} {c.ended.get(label, 0):,} → {_ENDS.get(label, 'ends')}"
                )
            elif target in drawn:
                lines.append(f"{prefix}{elbow}{label} {c.out.get(label, 0):,} → #{target} (above)")
            else:
                lines.append(
                    f"{prefix}{elbow}{label} {c.out.get(label, 0):,} → " + describe(target)
                )
                visit(target, prefix + indent)

    lines.append(describe(trigger.id))
    visit(trigger.id, "")
    return "\n".join(lines)
