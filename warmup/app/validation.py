"""`warmup validate` as a library call: the plan's own checks, its local times against the
clock changes of its sending dates, then its email templates rendered for sample customers — so
a field no customer has fails here, not at send time."""

from __future__ import annotations

from pathlib import Path

from warmup.email.render import check_email_templates
from warmup.errors import PlanError
from warmup.plan import LoadedPlan, load_plan
from warmup.wallclock import check_wall_times


def validate_plan(path: Path | str) -> LoadedPlan:
    """Load and check a plan completely; raises PlanError listing every problem."""
    loaded = load_plan(path)
    issues = check_wall_times(loaded) + check_email_templates(loaded)
    if issues:
        raise PlanError(issues)
    return loaded
