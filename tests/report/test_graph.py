from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app
from warmup.plan import load_scenario
from warmup.report.graph import layered_layout, to_dot, to_mermaid

REPO = Path(__file__).resolve().parents[2]
VARIANTS = [REPO / "scenarios" / "variant-1.yaml", REPO / "scenarios" / "variant-2.yaml"]
runner = CliRunner()


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_mermaid_has_every_node_and_labelled_edge(path: Path) -> None:
    scenario = load_scenario(path)
    text = to_mermaid(scenario)
    assert text.startswith("flowchart TD\n")
    for node in scenario.nodes:
        assert f"#{node.id} {node.type}: {node.title}" in text
    edges = re.findall(r"n_(\w+) -->(?:\|(yes|no)\|)? n_(\w+)", text)
    expected = {
        (n.id, "" if label == "next" else label, target)
        for n in scenario.nodes
        for label, target in n.edges().items()
    }
    assert set(edges) == expected


def test_dot_edges_carry_yes_no_labels() -> None:
    scenario = load_scenario(VARIANTS[0])
    text = to_dot(scenario)
    assert '"40" -> "limit" [label="yes"];' in text
    assert '"40" -> "299" [label="no"];' in text
    assert '"299" -> "limit";' in text
    assert text.rstrip().endswith("}")


def test_layout_puts_each_node_below_its_parents() -> None:
    scenario = load_scenario(VARIANTS[1])
    placed = {p.node.id: p for p in layered_layout(scenario)}
    assert set(placed) == {n.id for n in scenario.nodes}
    for node in scenario.nodes:
        for target in node.edges().values():
            assert placed[target].row > placed[node.id].row
    cells = {(p.row, p.column) for p in placed.values()}
    assert len(cells) == len(placed)


def test_graph_command_by_shipped_name_matches_file() -> None:
    by_name = runner.invoke(app, ["graph", "variant-2"])
    by_path = runner.invoke(app, ["graph", str(VARIANTS[1])])
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == by_path.output == to_mermaid(load_scenario(VARIANTS[1]))


def test_graph_command_dot() -> None:
    result = runner.invoke(app, ["graph", "variant-1", "--format", "dot"])
    assert result.exit_code == 0
    assert result.output.startswith('digraph "bloomreach-warmup-variant-1" {')


def test_readme_scenarios_section_matches_the_shipped_variants() -> None:
    readme = (REPO / "README.md").read_text()
    for path in VARIANTS:
        assert f"```mermaid\n{to_mermaid(load_scenario(path))}```" in readme, path.stem
