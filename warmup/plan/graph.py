"""Checks of a scenario's node graph: edges, reachability, cycles, entries."""

from __future__ import annotations

import difflib

from warmup.errors import Issue
from warmup.plan.scenario import AudienceNode, Scenario, TriggerNode
from warmup.plan.yamlpos import Positioned


def check_graph(scenario: Scenario, positioned: Positioned) -> list[Issue]:
    issues: list[Issue] = []
    file = positioned.file
    index = {node.id: i for i, node in enumerate(scenario.nodes)}

    def at(i: int, *rest: str) -> tuple[int | None, int | None]:
        return positioned.where(("nodes", i, *rest)) or (None, None)

    seen: dict[str, int] = {}
    for i, node in enumerate(scenario.nodes):
        if node.id in seen:
            line, col = at(i, "id")
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"node id `{node.id}` is used twice",
                    "give every node its own id",
                )
            )
        seen.setdefault(node.id, i)

    ids = list(index)
    for i, node in enumerate(scenario.nodes):
        for label, target in node.edges().items():
            if target not in index:
                line, col = at(i, label)
                close = difflib.get_close_matches(target, ids, n=1, cutoff=0.5)
                hint = f"did you mean `{close[0]}`?" if close else f"existing ids: {', '.join(ids)}"
                issues.append(
                    Issue(
                        file, line, col, f"node `{node.id}` {label}: `{target}` is not a node", hint
                    )
                )
            elif target == node.id:
                line, col = at(i, label)
                issues.append(
                    Issue(
                        file,
                        line,
                        col,
                        f"node `{node.id}` points at itself",
                        "point it at the next step, or remove the edge",
                    )
                )

    triggers = scenario.triggers()
    if not triggers:
        issues.append(
            Issue(
                file,
                1,
                1,
                "the scenario has no trigger",
                "add a node with `type: trigger` and `on: date`",
            )
        )
    date_triggers = [t for t in triggers if t.on == "date"]
    if len(date_triggers) > 1:
        for t in date_triggers[1:]:
            line, col = at(index[t.id])
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"trigger `{t.id}` is a second on-date trigger",
                    "a scenario has one on-date trigger; merge the two flows",
                )
            )
    for t in triggers:
        if t.next is None:
            line, col = at(index[t.id])
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"trigger `{t.id}` leads nowhere",
                    "give it `next:` — the one node its flow enters",
                )
            )
        if any(t.id in n.edges().values() for n in scenario.nodes):
            line, col = at(index[t.id])
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"trigger `{t.id}` has an edge pointing at it",
                    "a trigger is an entry: nothing may lead into it",
                )
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
            line, col = at(i)
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"node `{node.id}` is unreachable",
                    "connect it from a trigger's flow, or remove it",
                )
            )

    issues += _cycles(scenario, index, at, file)

    allocations = [
        n for n in scenario.nodes if isinstance(n, AudienceNode) and n.source == "allocation"
    ]
    if len(allocations) > 1:
        for n in allocations[1:]:
            line, col = at(index[n.id])
            issues.append(
                Issue(
                    file,
                    line,
                    col,
                    f"node `{n.id}` is a second allocation",
                    "a day has one allocation node; route both branches into one",
                )
            )
    return issues


def _cycles(scenario: Scenario, index: dict[str, int], at, file) -> list[Issue]:  # type: ignore[no-untyped-def]
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
                    line, col = at(index[node_id])
                    loop = " → ".join([*cycle, nxt])
                    issues.append(
                        Issue(
                            file,
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
