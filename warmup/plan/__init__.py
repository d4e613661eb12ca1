"""Plan and scenario files: models, YAML loading with positions, graph and template checks."""

from warmup.plan.loader import LoadedPlan, load_plan, load_scenario
from warmup.plan.models import Plan
from warmup.plan.scenario import Scenario

__all__ = ["LoadedPlan", "Plan", "Scenario", "load_plan", "load_scenario"]
