"""`--help` that reads like the README: ``Usage: warmup run [OPTIONS] PLAN``, flags without a
``<bool>`` value they do not take, arguments named in capitals.

Typer (from 0.2x, with its vendored click) renders required arguments as ``{plan}`` and gives
every flag, ``--help`` included, a ``<bool>`` type column. Its parameter classes have no hook
for this, so their display methods are adjusted once, here, and only where they exist.
"""

from __future__ import annotations

from typing import Any

import typer.core


def _argument_name(param: Any) -> str:
    # click's own habit: a given metavar as written, else the name in capitals
    return str(param.metavar) if param.metavar is not None else str(param.name or "").upper()


def install() -> None:
    option = getattr(typer.core, "TyperOption", None)
    argument = getattr(typer.core, "TyperArgument", None)
    if option is not None and hasattr(option, "display_type_rich"):
        shown = option.display_type_rich

        def option_type(self: Any, ctx: Any) -> str | None:
            return None if self.is_flag else shown(self, ctx)

        option.display_type_rich = option_type
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def usage_name(self: Any) -> str:
            name = _argument_name(self) + ("" if self.nargs == 1 else "...")
            return name if self.required else f"[{name}]"

        argument._usage_display_name = usage_name
        argument.display_name_raw = property(_argument_name)
        # the capital name says what it is; `<path>` after it adds nothing
        argument.display_type_rich = lambda self, ctx: None
