"""`warmup validate` as a library call: the plan's own checks, its local times against the
clock changes of its sending dates, then its email templates rendered for sample customers — so
a field no customer has fails here, not at send time."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from warmup.email.render import check_email_templates
from warmup.errors import Issue, PlanError, StoreMissing
from warmup.plan import LoadedPlan, load_plan, properties
from warmup.plan.yamlpos import load_yaml
from warmup.store import customers, open_store
from warmup.wallclock import check_wall_times


def validate_plan(path: Path | str) -> LoadedPlan:
    """Load and check a plan completely; raises PlanError listing every problem."""
    loaded = load_plan(path)
    issues = check_wall_times(loaded) + check_email_templates(loaded) + _property_columns(loaded)
    if issues:
        raise PlanError(issues)
    return loaded


def _property_columns(loaded: LoadedPlan) -> list[Issue]:
    """The profile properties' export columns against the columns the imported export had (its
    free attributes in the store); before the first import, `warmup import` checks them
    against the file's header."""
    if not properties.mapped_columns(loaded.plan):
        return []
    try:
        with closing(open_store(loaded.store_path, create=False)) as store:
            columns = customers.attribute_keys(store.backend)
    except StoreMissing:
        return []
    return properties.column_issues(
        loaded.plan, load_yaml(loaded.path), columns, "the imported export's columns"
    )
