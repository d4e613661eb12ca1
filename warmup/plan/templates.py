"""Check that every template a plan and its scenario reference exists and compiles."""

from __future__ import annotations

from pathlib import Path

import jinja2

from warmup.errors import Issue
from warmup.plan.models import Plan
from warmup.plan.scenario import EmailNode, Scenario, WebhookNode
from warmup.plan.yamlpos import Positioned

EMAIL_DIR = "email"
EMAIL_SUFFIX = ".j2"


def email_template_path(templates_dir: Path, name: str) -> Path:
    """``day-01`` → ``templates/email/day-01.j2``."""
    return templates_dir / EMAIL_DIR / f"{name}{EMAIL_SUFFIX}"


def inside(templates_dir: Path, path: Path) -> bool:
    """Whether ``path`` stays in the templates folder (no ``..`` or absolute path out of it,
    symbolic links followed)."""
    return path.resolve().is_relative_to(templates_dir.resolve())


def check_templates(
    plan: Plan,
    scenario: Scenario,
    templates_dir: Path,
    plan_file: Path,
    positioned: Positioned,
    scenario_positions: Positioned | None = None,
) -> list[Issue]:
    issues: list[Issue] = []
    env = jinja2.Environment(autoescape=False)
    checked: set[Path] = set()

    def compile_one(path: Path, where: tuple[Path, int | None, int | None], what: str) -> None:
        if not inside(templates_dir, path):
            issues.append(
                Issue(
                    where[0],
                    where[1],
                    where[2],
                    f"{what}: {path} is outside the templates folder {templates_dir}",
                    "name a file inside the templates folder, without `..` or a leading `/`",
                )
            )
            return
        if not path.exists():
            issues.append(
                Issue(
                    where[0],
                    where[1],
                    where[2],
                    f"{what}: {path} does not exist",
                    f"create it, or use one of the templates in {path.parent}",
                )
            )
            return
        if path in checked:
            return
        checked.add(path)
        try:
            env.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            issues.append(
                Issue(
                    path,
                    exc.lineno,
                    None,
                    f"template syntax error: {exc.message}",
                    "fix the Jinja tag on this line",
                )
            )

    def in_scenario(index: int) -> tuple[Path, int | None, int | None]:
        # a scenario's own template names are blamed on the scenario's line
        if scenario_positions is None:
            return (plan_file, None, None)
        line, col = scenario_positions.where(("nodes", index, "template")) or (None, None)
        return (scenario_positions.file, line, col)

    for index, node in enumerate(scenario.nodes):
        if isinstance(node, WebhookNode):
            compile_one(
                templates_dir / node.template,
                in_scenario(index),
                f"webhook node `{node.id}` template",
            )
        if isinstance(node, EmailNode) and node.template != "day":
            compile_one(
                email_template_path(templates_dir, node.template),
                in_scenario(index),
                f"email node `{node.id}` template",
            )
    if any(isinstance(n, EmailNode) and n.template == "day" for n in scenario.nodes):
        for i, day in enumerate(plan.schedule.days):
            name = day.template or plan.schedule.template
            if name is None:
                continue
            line, col = positioned.where(("schedule", "days", i, "template")) or (None, None)
            compile_one(
                email_template_path(templates_dir, name),
                (plan_file, line, col),
                f"day {day.day} template `{name}`",
            )
    return issues
