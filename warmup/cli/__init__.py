"""The ``warmup`` command line: a thin layer over the library."""

from __future__ import annotations

from typing import TYPE_CHECKING

import warmup.cli.app as _full
from warmup.cli.commands import main

if TYPE_CHECKING:
    from warmup.cli.app import app
else:
    # Importing the submodule bound its name, `app`, here; the name means the Typer app, which
    # is built on first use (`main` builds only the command being run), so it is looked up then.
    globals().pop("app", None)

    def __getattr__(name: str) -> object:
        if name != "app":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()["app"] = _full.app
        return _full.app


__all__ = ["app", "main"]
