"""The node registry is the one list of node types: every module under warmup/engine/nodes is
registered, and what the scenario model and the diagrams accept comes from it."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

import warmup.engine.nodes as registry
from warmup.engine.nodes import NODE_TYPES, REGISTRY
from warmup.plan.scenario import Scenario
from warmup.report.svg import NODE_FILL

MODULES = sorted(
    p.stem
    for p in Path(registry.__file__).parent.glob("*.py")
    if p.stem not in ("__init__", "base")
)


def test_every_node_module_is_registered_under_its_type() -> None:
    assert sorted(NODE_TYPES) == MODULES
    for name in MODULES:
        kind = import_module(f"warmup.engine.nodes.{name}").TYPE
        assert REGISTRY[name] is kind
        assert kind.name == name


def test_the_scenario_schema_offers_exactly_the_registered_types() -> None:
    schema = json.dumps(Scenario.model_json_schema())
    mapping = Scenario.model_json_schema()["properties"]["nodes"]["items"]["discriminator"]
    assert sorted(mapping["mapping"]) == sorted(NODE_TYPES)
    assert all(f'"const": "{name}"' in schema for name in NODE_TYPES)


def test_each_type_has_its_own_box_colour() -> None:
    assert set(NODE_FILL) == set(NODE_TYPES)
    assert len(set(NODE_FILL.values())) == len(NODE_TYPES)
