"""The scenario engine: run one plan day as a node graph over the store, with a dry run.

Public entry points: ``run_day`` (the ``warmup run`` command), ``process_events`` (the event
flows, for ``warmup serve``), ``explain`` (the ``warmup explain`` command).

They load on first use: the plan's scenario model imports the node registry
(``warmup.engine.nodes``), which must not pull in the engine that reads plans.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmup.engine.day import run_day
    from warmup.engine.events import process_events
    from warmup.engine.explainer import Explanation, explain
    from warmup.engine.result import DayResult

_WHERE = {
    "run_day": "warmup.engine.day",
    "process_events": "warmup.engine.events",
    "Explanation": "warmup.engine.explainer",
    "explain": "warmup.engine.explainer",
    "DayResult": "warmup.engine.result",
}

__all__ = ["DayResult", "Explanation", "explain", "process_events", "run_day"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
