"""`--help` reads like the README: no `<bool>` after flags, arguments in capitals (not `{plan}`),
the choices of `graph --format`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from warmup.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "--help"], "Usage: warmup run [OPTIONS] PLAN"),
        (["import", "--help"], "Usage: warmup import [OPTIONS] PLAN FILE.csv"),
        (["graph", "--help"], "Usage: warmup graph [OPTIONS] SCENARIO"),
    ],
)
def test_help_reads_like_the_readme(argv: list[str], usage: str) -> None:
    result = runner.invoke(app, argv, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert usage in result.output
    assert "<bool>" not in result.output and "{" not in result.output
    if argv[0] == "graph":
        assert "mermaid|dot" in result.output
    if argv[0] == "run":
        assert "--dry-run " in result.output and "<int>" in result.output  # values keep types
