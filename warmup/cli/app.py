"""The ``warmup`` app with every command (``warmup --help``, a mistyped command, tests), built
on first use of ``app``; how it is composed, and why ``main`` usually builds less:
``warmup.cli.commands``."""

from __future__ import annotations

import typer

from warmup.cli.commands import build, main

__all__ = ["build", "main"]  # and `app`, below


def __getattr__(name: str) -> typer.Typer:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = build()
    globals()["app"] = app  # built once
    return app
