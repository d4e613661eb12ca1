"""Every command has help, and a row in the README's CLI reference (sqlite-utils' habit)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from warmup.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, Any]]:
    # Typer vendors its own click: groups are recognised by their `commands`, not by class.
    root: Any = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            found += [(f"{name} {sub}", cmd) for sub, cmd in command.commands.items()]
        else:
            found.append((name, command))
    return found


COMMANDS = _commands()


def test_there_are_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"validate", "import", "graph", "init", "status", "report", "demo"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_and_its_parameters_have_help(name: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`warmup {name}` has no help text"
    for param in command.params:
        if not getattr(param, "hidden", False):
            text = getattr(param, "help", None)
            assert (text or "").strip(), f"`warmup {name}`: {param.name} has no help text"


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_command_is_in_the_readme_cli_reference(name: str) -> None:
    rows = re.findall(r"^\| `warmup ([^`]*)`", README, flags=re.MULTILINE)
    assert any(row == name or row.startswith(f"{name} ") for row in rows), (
        f"add a `| \\`warmup {name} …\\` | what it does |` row to README's CLI reference"
    )
