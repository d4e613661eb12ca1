"""The ``warmup`` app with every command (``warmup --help``, tests); how it is composed and
why ``main`` usually builds less: ``warmup.cli.commands``."""

from __future__ import annotations

from warmup.cli.commands import build, main

app = build()

__all__ = ["app", "main"]
