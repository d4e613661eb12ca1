"""Compose the ``warmup`` command from one module per command.

Each command lives in ``warmup/cli/<name>.py`` and exposes ``register(app)``; add it to
``COMMANDS`` below (the command's name → its module). Command modules import the library inside
the command function: every ``warmup`` invocation imports the CLI, and uvicorn, httpx, pydantic
or sqlite-utils at import time would cost each one about half a second
(tests/cli/test_startup.py).

``main`` assembles only the command being run: ``warmup validate …`` imports and converts the
validate module, not the other eighteen. Anything else (``warmup --help``, a mistyped command)
runs the full app of ``warmup.cli.app``; tests/cli/test_startup.py checks that every command
behaves the same through both.
"""

from __future__ import annotations

import importlib
import sys

import typer

from warmup.cli import helptext

helptext.install()

# command name → the module under warmup/cli/ that registers it, in `--help` order
COMMANDS = {
    "validate": "validate",
    "check": "check",
    "schema": "schema",
    "import": "importing",
    "sample": "sample",
    "graph": "graph",
    "init": "init",
    "status": "status",
    "report": "report",
    "demo": "demo",
    "run": "run",
    "explain": "explain",
    "serve": "serve",
    "worker": "worker",
    "events": "events",
    "sandbox": "sandbox",
    "sync": "sync",
    "export": "export",
    "store": "store",
}


def _root() -> None:
    """Run email-migration warm-up scenarios."""


def build(commands: list[str] | None = None) -> typer.Typer:
    """The ``warmup`` app with the named commands, or with all of them."""
    app = typer.Typer(
        name="warmup",
        help="Run email-migration warm-up scenarios: ramp a new provider day by day while "
        "Klaviyo mails everyone else.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    for name in COMMANDS if commands is None else commands:
        importlib.import_module(f"warmup.cli.{COMMANDS[name]}").register(app)
    return app


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in COMMANDS:
        build([command])()
    else:
        importlib.import_module("warmup.cli.app").app()
