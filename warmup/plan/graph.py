"""Checks of a scenario's node graph: edges, reachability, cycles, entries."""

from __future__ import annotations

import difflib

from warmup.engine.nodes import type_of
from warmup.errors import Issue
from warmup.plan.scenario import Scenario, TriggerNode
from warmup.plan.yamlpos import Loc, Positioned


def check_graph(scenario: Scenario, positioned: Positioned) -> list[Issue]:
    issues: list[Issue] = []
    file = positioned.file
    index = {node.id: i for i, node in enumerate(scenario.nodes)}

    def flag(i: int | None, message: str, hint: str, key: str | None = None) -> None:
        """An issue at node ``i`` (at its ``key`` when given), or at the file's top."""
        line: int | None
        col: int | None
        if i is None:
            line, col = 1, 1
        else:
            where: Loc = ("nodes", i, key) if key else ("nodes", i)
            line, col = positioned.where(where) or (None, None)
        issues.append(Issue(file, line, col, message, hint))

    seen: set[str] = set()
    for i, node in enumerate(scenario.nodes):
        if node.id in seen:
            flag(i, f"node id `{node.id}` is used twice", "give every node its own id", "id")
        seen.add(node.id)

    ids = list(index)
    for i, node in enumerate(scenario.nodes):
        for label, target in node.edges().items():
            if target not in index:
                close = difflib.get_close_matches(target, ids, n=1, cutoff=0.5)
                hint = f"did you mean `{close[0]}`?" if close else f"existing ids: {', '.join(ids)}"
                flag(i, f"node `{node.id}` {label}: `{target}` is not a node", hint, label)
            elif target == node.id:
                flag(
                    i,
                    f"node `{node.id}` points at itself",
                    "point it at the next step, or remove the edge",
                    label,
                )

    triggers = scenario.triggers()
    if not triggers:
        flag(None, "the scenario has no trigger", "add a node with `type: trigger` and `on: date`")
    for t in [t for t in triggers if t.on == "date"][1:]:
        flag(
            index[t.id],
            f"trigger `{t.id}` is a second on-date trigger",
            "a scenario has one on-date trigger; merge the two flows",
        )
    for t in triggers:
        if t.next is None:
            flag(
                index[t.id],
                f"trigger `{t.id}` leads nowhere",
                "give it `next:` — the one node its flow enters",
            )
        if any(t.id in n.edges().values() for n in scenario.nodes):
            flag(
                index[t.id],
                f"trigger `{t.id}` has an edge pointing at it",
                "a trigger is an entry: nothing may lead into it",
            )

    reachable: set[str] = set()
    stack = [t.id for t in triggers]
    while stack:
        current = stack.pop()
        if current in reachable or current not in index:
            continue
        reachable.add(current)
        stack.extend(scenario.nodes[index[current]].edges().values())
    for i, node in enumerate(scenario.nodes):
        if node.id not in reachable and not isinstance(node, TriggerNode):
            flag(
                i,
                f"node `{node.id}` is unreachable",
                "connect it from a trigger's flow, or remove it",
            )

    issues += _cycles(scenario, index, positioned)

    allocations = [n for n in scenario.nodes if type_of(n).is_allocation(n)]
    for n in allocations[1:]:
        flag(
            index[n.id],
            f"node `{n.id}` is a second allocation",
            "a day has one allocation node; route both branches into one",
        )
    return issues


def _cycles(scenario: Scenario, index: dict[str, int], positioned: Positioned) -> list[Issue]:
    """One issue per distinct cycle, at the node that closes it (iterative DFS, three colours)."""
    issues: list[Issue] = []
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(index, white)
    reported: set[frozenset[str]] = set()

    def visit(start: str) -> None:
        first = list(scenario.nodes[index[start]].edges().values())
        stack: list[tuple[str, list[str]]] = [(start, first)]
        path = [start]
        colour[start] = grey
        while stack:
            node_id, todo = stack[-1]
            if not todo:
                colour[node_id] = black
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if nxt not in index or nxt == node_id:
                continue
            if colour[nxt] == grey:
                cycle = path[path.index(nxt) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    line, col = positioned.where(("nodes", index[node_id])) or (None, None)
                    loop = " → ".join([*cycle, nxt])
                    issues.append(
                        Issue(
                            positioned.file,
                            line,
                            col,
                            f"cycle: {loop}",
                            "a day's flow runs forward only; break the loop",
                        )
                    )
            elif colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append((nxt, list(scenario.nodes[index[nxt]].edges().values())))

    for node_id in index:
        if colour[node_id] == white:
            visit(node_id)
    return issues
