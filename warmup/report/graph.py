"""A scenario's node graph as text diagrams (Mermaid, Graphviz dot) and as a layered layout.

The layout (one row per depth from the triggers) is shared by the HTML report, which draws the
same graph as SVG boxes with a day's counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warmup.engine.nodes import type_of
from warmup.errors import InvalidInput
from warmup.plan.loader import load_scenario
from warmup.plan.resources import bundled_dir
from warmup.plan.scenario import Node, Scenario

FORMATS = ("mermaid", "dot")


def resolve_scenario(reference: str | Path) -> Path:
    """A scenario file path, or the name of a shipped one (``variant-1``)."""
    path = Path(reference)
    if path.is_file():
        return path
    shipped = bundled_dir("scenarios")
    for candidate in (shipped / str(reference), shipped / f"{reference}.yaml"):
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
    raise InvalidInput(
        f"scenario {reference} not found",
        hint=f"give a scenario file path or a shipped name: {names}",
    )


def node_label(node: Node) -> str:
    """``#19 audience: Total audience…`` — id, type and title, as every diagram shows them."""
    label = f"#{node.id} {node.type}"
    return f"{label}: {node.title}" if node.title else label


def _mermaid_text(text: str) -> str:
    # Mermaid labels live inside "..."; it decodes `#name;` entities, so `;` and `"` are
    # written as entities (a bare `#229 ` stays literal).
    return text.replace(";", "#59;").replace('"', "#quot;")


def _mermaid_id(node_id: str) -> str:
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in node_id)


def to_mermaid(scenario: Scenario) -> str:
    """A Mermaid ``flowchart TD``: node ids, types and titles; ``yes``/``no`` edge labels."""
    lines = ["flowchart TD"]
    for node in scenario.nodes:
        left, right = type_of(node).drawing.mermaid
        lines.append(f"    {_mermaid_id(node.id)}{left}{_mermaid_text(node_label(node))}{right}")
    for node in scenario.nodes:
        for label, target in node.edges().items():
            arrow = "-->" if label == "next" else f"-->|{label}|"
            lines.append(f"    {_mermaid_id(node.id)} {arrow} {_mermaid_id(target)}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(scenario: Scenario) -> str:
    """A Graphviz digraph with the same labels as :func:`to_mermaid`."""
    lines = [
        f'digraph "{_dot_text(scenario.name)}" {{',
        "    rankdir=TB;",
        '    node [shape=box, fontname="Helvetica"];',
    ]
    for node in scenario.nodes:
        shape = type_of(node).drawing.dot
        lines.append(
            f'    "{_dot_text(node.id)}" [label="{_dot_text(node_label(node))}", shape={shape}];'
        )
    for node in scenario.nodes:
        for label, target in node.edges().items():
            attrs = "" if label == "next" else f' [label="{label}"]'
            lines.append(f'    "{_dot_text(node.id)}" -> "{_dot_text(target)}"{attrs};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(reference: str | Path, fmt: str = "mermaid") -> str:
    """Load a scenario (path or shipped name) and draw it in ``fmt`` (mermaid or dot)."""
    if fmt not in FORMATS:
        raise InvalidInput(
            f"--format {fmt} is not a diagram format", hint=f"use one of: {', '.join(FORMATS)}"
        )
    scenario = load_scenario(resolve_scenario(reference))
    return to_mermaid(scenario) if fmt == "mermaid" else to_dot(scenario)


@dataclass(frozen=True)
class Placed:
    node: Node
    row: int
    column: int


def layered_layout(scenario: Scenario) -> list[Placed]:
    """Rows by longest path from a trigger (graphs are acyclic, checked at load); within a row,
    nodes keep file order. Separate triggers' subgraphs sit side by side."""
    by_id = scenario.by_id
    depth: dict[str, int] = {}
    order = [n.id for n in scenario.nodes]
    incoming: dict[str, int] = {node_id: 0 for node_id in order}
    for node in scenario.nodes:
        for target in node.edges().values():
            incoming[target] = incoming.get(target, 0) + 1
    # Kahn's order gives longest-path depths in one pass over an acyclic graph.
    ready = [node_id for node_id in order if incoming[node_id] == 0]
    for node_id in ready:
        depth.setdefault(node_id, 0)
    remaining = dict(incoming)
    while ready:
        current = ready.pop(0)
        for target in by_id[current].edges().values():
            depth[target] = max(depth.get(target, 0), depth[current] + 1)
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    group = _component_of(scenario)
    groups = sorted(set(group.values()), key=order.index)
    columns: dict[tuple[int, int], int] = {}
    placed: list[Placed] = []
    offset = 0
    for g in groups:
        width = 0
        for node_id in order:
            if group[node_id] != g:
                continue
            row = depth.get(node_id, 0)
            column = columns.get((groups.index(g), row), 0)
            columns[(groups.index(g), row)] = column + 1
            width = max(width, column + 1)
            placed.append(Placed(by_id[node_id], row, offset + column))
        offset += width
    return placed


def _component_of(scenario: Scenario) -> dict[str, str]:
    """Each node's weakly connected component, named by its first node in file order."""
    parent = {n.id: n.id for n in scenario.nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = [n.id for n in scenario.nodes]
    for node in scenario.nodes:
        for target in node.edges().values():
            a, b = find(node.id), find(target)
            if a != b:
                first, second = sorted((a, b), key=order.index)
                parent[second] = first
    return {node_id: find(node_id) for node_id in order}
