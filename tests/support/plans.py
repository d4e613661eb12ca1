"""The one plan-file builder every test helper calls.

A test plan is always one of two things: the shipped ``plans/example.yaml`` with a few of its
lines edited (its line and column layout kept, for tests that locate errors or edit it further),
or a plan written whole by the caller. Either way its scenario and templates point into this
repository, whatever folder the plan is written to. Callers pass only their differences:
``edits`` (text replacements, in order), ``settings`` (values merged into the YAML mapping;
the file is then written by ``yaml.safe_dump``) and ``extra`` (text appended).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plans" / "example.yaml"


def example_text(scenario: str = "variant-1") -> str:
    """``plans/example.yaml`` with its relative scenario and templates made absolute."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("../scenarios/variant-1.yaml", str(REPO / f"scenarios/{scenario}.yaml"))
    return text.replace("templates: ../templates", f"templates: {REPO / 'templates'}")


def write_plan(
    folder: Path,
    *,
    base: str | Mapping[str, Any] | None = None,
    edits: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    extra: str = "",
    name: str = "plan.yaml",
) -> Path:
    """Write ``folder/name``: ``base`` (plan text, a plan mapping, or by default the example
    plan's text), then ``edits``, then ``settings``, then ``extra``; return its path."""
    if base is None:
        text = example_text()
    elif isinstance(base, str):
        text = base
    else:
        text = yaml.safe_dump(dict(base), sort_keys=False)
    for old, new in (edits or {}).items():
        text = text.replace(old, new)
    if settings:
        plan = yaml.safe_load(text)
        _merge(plan, settings)
        text = yaml.safe_dump(plan, sort_keys=False)
    path = folder / name
    path.write_text(text + extra, encoding="utf-8")
    return path


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Nested mappings are merged key by key; anything else (lists included) replaces."""
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
