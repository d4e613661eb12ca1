"""The ``warmup`` command line: a thin layer over the library."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from warmup.cli.commands import main

if TYPE_CHECKING:
    from warmup.cli.app import app
else:

    def __getattr__(name: str) -> object:
        # The full app is built on first use: `main` builds only the command being run.
        if name != "app":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        full = importlib.import_module("warmup.cli.app").app
        globals()["app"] = full  # the Typer app, not the submodule the import bound here
        return full


__all__ = ["app", "main"]
