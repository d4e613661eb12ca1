"""Compose the ``warmup`` command from one module per command.

Each command lives in ``warmup/cli/<name>.py`` and exposes ``register(app)``; add its module
name to ``COMMANDS`` below. Command modules import the library inside the command function:
every ``warmup`` invocation imports all of them, and uvicorn, httpx, pydantic or sqlite-utils at
import time would cost each one about half a second (tests/cli/test_startup.py).
"""

from __future__ import annotations

import importlib

import typer

from warmup.cli import helptext

helptext.install()

app = typer.Typer(
    name="warmup",
    help="Run email-migration warm-up scenarios: ramp a new provider day by day while Klaviyo "
    "mails everyone else.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Run email-migration warm-up scenarios."""


COMMANDS = [
    "validate",
    "check",
    "schema",
    "importing",
    "sample",
    "graph",
    "init",
    "status",
    "report",
    "demo",
    "run",
    "explain",
    "serve",
    "events",
    "sandbox",
    "sync",
    "export",
    "store",
]

for _name in COMMANDS:
    importlib.import_module(f"warmup.cli.{_name}").register(app)


def main() -> None:
    app()
