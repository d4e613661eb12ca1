"""The scenario engine: run one plan day as a node graph over the store, with a dry run.

Public entry points: ``run_day`` (the ``warmup run`` command), ``process_events`` (the event
flows, for ``warmup serve``), ``explain`` (the ``warmup explain`` command).
"""

from warmup.engine.day import run_day
from warmup.engine.events import process_events
from warmup.engine.explain import Explanation, explain
from warmup.engine.result import DayResult

__all__ = ["DayResult", "Explanation", "explain", "process_events", "run_day"]
