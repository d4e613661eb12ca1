"""Load a plan and its scenario, validate both, and report every problem at once."""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from warmup.errors import InvalidInput, Issue, PlanError
from warmup.plan import consent_rules, properties, seed_rules
from warmup.plan.graph import check_graph
from warmup.plan.models import Plan
from warmup.plan.resources import bundled_dir
from warmup.plan.scenario import Scenario
from warmup.plan.templates import check_templates
from warmup.plan.yamlpos import Loc, Positioned, load_yaml
from warmup.store import store_path_for
from warmup.store.backends import is_postgres_url
from warmup.store.database import STORE_ENV


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan with everything resolved: its scenario, templates folder and store."""

    plan: Plan
    path: Path
    scenario: Scenario
    scenario_path: Path
    templates_dir: Path
    store_path: Path
    # The settings providers are wired from: the environment variables the plan names, read
    # once at the edge (load_plan's caller) and handed down, never copied into the plan, the
    # store or any output (repr=False keeps them out of reprs and tracebacks).
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False, compare=False)

    def setting(self, name: str | None) -> str | None:
        """The value of the environment variable ``name`` the plan names, None when unset."""
        if not name:
            return None
        return self.env.get(name) or None  # set but empty counts as unset

    @property
    def name(self) -> str:
        return self.plan.name


def load_scenario(path: Path) -> Scenario:
    """Load and check one scenario file on its own (graph checks included)."""
    return _load_scenario(path)[0]


def _load_scenario(path: Path) -> tuple[Scenario, Positioned]:
    """The scenario and where each of its values is (to blame its lines, not the plan's)."""
    positioned = load_yaml(path)
    scenario, issues = _validate(Scenario, positioned, "scenario")
    if scenario is not None:
        issues += check_graph(scenario, positioned)
    if issues or not isinstance(scenario, Scenario):
        raise PlanError(issues)
    return scenario, positioned


def resolve_relative(base: Path, value: str, bundled: str) -> Path:
    """A path from a plan: relative to the plan's folder, else a bundled one by name."""
    candidate = Path(value)
    if not candidate.is_absolute():
        # normpath: people read these paths in messages; `plans/../scenarios` says less
        candidate = Path(os.path.normpath(base.parent / candidate))
    if candidate.exists():
        return candidate
    shipped = bundled_dir(bundled) / value
    for option in (shipped, shipped.with_suffix(".yaml")):
        if option.exists():
            return option
    return candidate


def load_plan(path: Path | str, *, env: Mapping[str, str] | None = None) -> LoadedPlan:
    """Load, validate and resolve a plan file. Raises PlanError listing every problem.

    ``env`` holds the settings (secrets, $WARMUP_STORE) the plan's providers are wired from:
    the process environment when None, explicit values otherwise (the demo's sandboxes)."""
    path = Path(path)
    env = os.environ if env is None else env
    positioned = load_yaml(path)
    plan, issues = _validate(Plan, positioned, "plan")
    if plan is None:
        # Every mistake at once: the scenario's own problems too, when it can be found.
        raw = positioned.data.get("scenario") if isinstance(positioned.data, dict) else None
        if isinstance(raw, str) and resolve_relative(path, raw, "scenarios").exists():
            try:
                load_scenario(resolve_relative(path, raw, "scenarios"))
            except PlanError as exc:
                issues += exc.issues
        raise PlanError(issues)

    scenario_path = resolve_relative(path, plan.scenario, "scenarios")
    templates_dir = (
        resolve_relative(path, plan.templates, "templates")
        if plan.templates
        else _default_templates(path)
    )
    if not templates_dir.is_dir():
        line, col = positioned.where(("templates",)) or (None, None)
        issues.append(
            Issue(
                path,
                line,
                col,
                f"templates folder {templates_dir} not found",
                "point `templates:` at the folder holding email/ and klaviyo/",
            )
        )
    scenario: Scenario | None = None
    scenario_positions: Positioned | None = None
    if not scenario_path.exists():
        line, col = positioned.where(("scenario",)) or (None, None)
        shipped = sorted(p.stem for p in bundled_dir("scenarios").glob("*.yaml"))
        issues.append(
            Issue(
                path,
                line,
                col,
                f"scenario file {plan.scenario} not found",
                "give a path relative to the plan, or a shipped one: " + ", ".join(shipped),
            )
        )
    else:
        try:
            scenario, scenario_positions = _load_scenario(scenario_path)
        except PlanError as exc:
            issues += exc.issues
    if scenario is not None and scenario_positions is not None:
        issues += _cross_check(plan, scenario, positioned, scenario_path)
        issues += seed_rules.check(plan, scenario, positioned, scenario_positions, scenario_path)
        issues += properties.check_arms(plan, scenario, positioned)
        issues += consent_rules.check(plan, scenario, scenario_positions, scenario_path)
        issues += consent_rules.check_lists(plan, positioned, path)
        if templates_dir.is_dir():
            issues += check_templates(
                plan, scenario, templates_dir, path, positioned, scenario_positions
            )
    from_env = bool(env.get(STORE_ENV))
    try:
        store_path = store_path_for(path, plan.store, env=env)
    except InvalidInput as exc:  # a URL of another engine, no host, a password in it
        line, col = (None, None) if from_env else positioned.where(("store",)) or (None, None)
        issues.append(Issue(STORE_ENV if from_env else path, line, col, exc.message, exc.hint))
        raise PlanError(issues) from None
    issues += _store_issues(store_path, path, positioned, from_env=from_env)
    if issues or scenario is None:
        raise PlanError(issues)
    return LoadedPlan(
        plan=plan,
        path=path,
        scenario=scenario,
        scenario_path=scenario_path,
        templates_dir=templates_dir,
        store_path=store_path,
        env=env,
    )


_SQLITE_HEADER = b"SQLite format 3\x00"


def _store_issues(
    store: Path, plan_path: Path, positioned: Positioned, *, from_env: bool
) -> list[Issue]:
    """The store must be (or become) a SQLite file warmup can write: a folder, a device such as
    /dev/null, another kind of file or a read-only place is named here, at the plan's line,
    rather than failing half-way through a run."""
    problem: str | None = None
    if is_postgres_url(store):  # a server's database: checked when the store is opened
        return []
    if store.is_dir():
        problem = f"store {store} is a folder"
    elif store.exists() and not store.is_file():
        problem = f"store {store} is not a regular file (a device or a pipe)"
    elif store.is_file():
        try:
            with store.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            header, problem = b"", f"store {store} cannot be read: {exc.strerror}"
        if problem is None and header and header != _SQLITE_HEADER:
            problem = f"store {store} is not a SQLite database"
        elif problem is None and not os.access(store, os.W_OK):
            problem = f"store {store} is read-only"
    else:
        folder = store.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            problem = f"store {store} cannot be created: {folder} is not a writable folder"
    if problem is None:
        return []
    hint = "point `store:` at a new or existing .db file in a folder you can write"
    if from_env:
        return [Issue(STORE_ENV, None, None, problem, hint.replace("`store:`", STORE_ENV))]
    line, col = positioned.where(("store",)) or (None, None)
    return [Issue(plan_path, line, col, problem, hint)]


def _default_templates(plan_path: Path) -> Path:
    beside = plan_path.parent / "templates"
    return beside if beside.is_dir() else bundled_dir("templates")


def _cross_check(
    plan: Plan, scenario: Scenario, positioned: Positioned, scenario_path: Path
) -> list[Issue]:
    from warmup.mailboxes.checks import mailbox_issues
    from warmup.plan.guardrail_rules import relative_issues
    from warmup.plan.scenario import EmailNode

    issues: list[Issue] = mailbox_issues(plan, positioned) + relative_issues(plan, positioned)
    uses_day_template = any(
        isinstance(n, EmailNode) and n.template == "day" for n in scenario.nodes
    )
    if uses_day_template and plan.schedule.template is None:
        for index, day in enumerate(plan.schedule.days):
            if day.template is None:
                line, col = positioned.where(("schedule", "days", index)) or (None, None)
                issues.append(
                    Issue(
                        plan_path_of(positioned),
                        line,
                        col,
                        f"day {day.day} has no template",
                        "add `template: NAME` to the day (templates/email/NAME.j2) "
                        "or a default `template:` under schedule",
                    )
                )
    return issues


def plan_path_of(positioned: Positioned) -> Path:
    return positioned.file


# --- pydantic errors → located issues ------------------------------------------------------


def _validate(model: type[BaseModel], positioned: Positioned, what: str) -> tuple[Any, list[Issue]]:
    if not isinstance(positioned.data, dict):
        return None, [
            Issue(
                positioned.file,
                1,
                1,
                f"a {what} file must be a YAML mapping of keys to values",
                f"see `warmup schema {what}`",
            )
        ]
    try:
        return model.model_validate(positioned.data), []
    except ValidationError as exc:
        return None, [_issue_from_error(model, positioned, err) for err in exc.errors()]


def _data_path(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop the parts of a pydantic loc that are not in the data (union tags, model names)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and part is loc[-1]:
            # the missing or unknown key itself
            path.append(part)
    return tuple(path)


def _issue_from_error(model: type[BaseModel], positioned: Positioned, err: Any) -> Issue:
    loc = tuple(err["loc"])
    path = _data_path(positioned.data, loc)
    kind = err["type"]
    dotted = ".".join(str(p) for p in path) or "(top level)"
    if kind == "extra_forbidden":
        line, col = positioned.where(path, key=True) or (None, None)
        allowed = _allowed_keys(model, positioned.data, path[:-1])
        wrong = str(path[-1]) if path else "?"
        close = difflib.get_close_matches(wrong, allowed, n=1, cutoff=0.6)
        hint = (
            f"did you mean `{close[0]}`?"
            if close
            else f"allowed here: {', '.join(sorted(allowed))}"
            if allowed
            else "remove it"
        )
        return Issue(positioned.file, line, col, f"unknown key `{wrong}`", hint)
    if kind == "missing":
        parent = path[:-1] if path and path[-1] == loc[-1] else path
        line, col = positioned.where(parent) or (None, None)
        under = ".".join(str(p) for p in parent) or "the top level"
        return Issue(
            positioned.file,
            line,
            col,
            f"`{loc[-1]}` is required here",
            f"add `{loc[-1]}:` under {under}",
        )
    line, col = positioned.where(path) or (None, None)
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        message = (
            f"`{ctx.get('discriminator', 'type').strip(chr(39))}: {ctx.get('tag')}` "
            f"is not one of {ctx.get('expected_tags')}"
        )
        return Issue(positioned.file, line, col, f"{dotted}: {message}", _tag_hint(err))
    if " — " in message:
        text, hint = message.split(" — ", 1)
        return Issue(positioned.file, line, col, f"{dotted}: {text}", hint)
    return Issue(positioned.file, line, col, f"{dotted}: {message}", _generic_hint(err))


def _tag_hint(err: Any) -> str:
    ctx = err.get("ctx") or {}
    expected = str(ctx.get("expected_tags", ""))
    given = str(ctx.get("tag", ""))
    options = [t.strip().strip("'") for t in expected.split(",")]
    close = difflib.get_close_matches(given, options, n=1, cutoff=0.5)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"use one of {expected}"


def _generic_hint(err: Any) -> str | None:
    kind = err["type"]
    if kind == "literal_error":
        ctx = err.get("ctx") or {}
        return f"use one of {ctx.get('expected', '')}"
    if kind in ("int_parsing", "int_type"):
        return "write a whole number"
    if kind in ("float_parsing", "float_type"):
        return "write a number"
    if kind in ("date_parsing", "date_from_datetime_parsing", "date_type"):
        return "write a date like 2026-12-01"
    if kind in ("string_type",):
        return "write text (quote it if it looks like a number or date)"
    if kind in ("bool_parsing", "bool_type"):
        return "write true or false"
    if kind in ("list_type",):
        return "write a list, like [a, b] or one `- item` per line"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a block of `key: value` lines here"
    return None


def _allowed_keys(model: type[BaseModel], data: Any, parent: Loc) -> list[str]:
    """The keys a model accepts at ``parent`` (walking nested models and tagged unions)."""
    current: Any = model
    node_data: Any = data
    for part in parent:
        if isinstance(node_data, dict):
            node_data = node_data.get(part)
        elif isinstance(node_data, list) and isinstance(part, int):
            node_data = node_data[part]
        else:
            node_data = None
        current = _descend(current, part, node_data)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _descend(annotation: Any, part: str | int, node_data: Any) -> Any:
    annotation = _pick_model(annotation, node_data)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        for name, f in annotation.model_fields.items():
            if part in (name, f.alias):
                return _pick_model(f.annotation, node_data)
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        return _pick_model(args[0], node_data)
    if origin is dict and len(args) == 2:
        return _pick_model(args[1], node_data)
    return None


def _pick_model(annotation: Any, node_data: Any) -> Any:
    """Unwrap Annotated/Optional/unions to the model the data belongs to."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _pick_model(typing.get_args(annotation)[0], node_data)
    if origin in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(node_data, dict) and models:
            for m in models:
                for key in ("type", "kind"):
                    field = m.model_fields.get(key)
                    if field is not None and node_data.get(key) in typing.get_args(
                        field.annotation
                    ):
                        return m
            return models[0]
        if len(candidates) == 1:
            return _pick_model(candidates[0], node_data)
        for c in candidates:
            if typing.get_origin(c) in (list, dict):
                return c
        return candidates[0] if candidates else None
    return annotation
