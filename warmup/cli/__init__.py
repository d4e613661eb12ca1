"""The ``warmup`` command line: a thin layer over the library."""

from warmup.cli.app import app, main

__all__ = ["app", "main"]
