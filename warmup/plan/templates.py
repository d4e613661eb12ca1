"""Check that every template a plan and its scenario reference exists and compiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from warmup.errors import Issue, TemplateError
from warmup.plan.models import Plan
from warmup.plan.render import render_webhook
from warmup.plan.scenario import EmailNode, Scenario, WebhookNode
from warmup.plan.yamlpos import Positioned

# What a webhook template is rendered with at `validate`: each branch the dispatcher can take
# (profiles with and without a Klaviyo id, each list mode), with text that needs escaping.
_SAMPLE_PROFILE = {
    "email": "ann@example.com",
    "phone": "+420600000000",
    "external_id": "ext-1",
    "first_name": 'Ann "Quote" \\ O\'Neil',
    "last_name": "Ñandú",
}
_SAMPLE_CONTEXTS: list[dict[str, Any]] = [
    {
        "profiles": [{**_SAMPLE_PROFILE, "klaviyo_id": kid}],
        "list_id": "LIST-ID",
        "list_mode": mode,
        "consented_at": "2026-12-01T09:59:00+00:00",
        "day": 1,
    }
    for kid in ("01SAMPLEPROFILEID", None)
    for mode in ("force_add", "subscribe")
]

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

    def compile_one(
        path: Path, where: tuple[Path, int | None, int | None], what: str, *, webhook: bool = False
    ) -> None:
        try:
            usable = inside(templates_dir, path) and path.exists()
        except (OSError, ValueError) as exc:  # a NUL, a name longer than the system allows
            issues.append(
                Issue(
                    where[0],
                    where[1],
                    where[2],
                    f"{what}: not a usable file name ({exc})",
                    "write a short template file name of letters, digits, `-`, `_` and `.`",
                )
            )
            return
        if not usable and not inside(templates_dir, path):
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
        if not usable:
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
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            issues.append(
                Issue(
                    path,
                    line,
                    col,
                    f"byte 0x{raw[exc.start]:02X} is not UTF-8 text",
                    "save the template as UTF-8",
                )
            )
            return
        try:
            env.parse(text, filename=str(path))
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
            return
        if webhook:
            issues.extend(_render_webhook_samples(templates_dir, path))

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
                webhook=True,
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


def _render_webhook_samples(templates_dir: Path, path: Path) -> list[Issue]:
    """Render a webhook template as the dispatcher would (unknown filters, undefined names and
    bodies that are not a JSON object show here, not after the outbox was written)."""
    name = path.relative_to(templates_dir).as_posix()
    for context in _SAMPLE_CONTEXTS:
        try:
            text = render_webhook(templates_dir, name, context)
        except TemplateError as exc:
            return [
                Issue(
                    Path(exc.file) if exc.file else path,
                    exc.line,
                    None,
                    f"webhook template does not render: {exc.message}",
                    exc.hint or "fix the Jinja expression on this line",
                )
            ]
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            return [
                Issue(
                    path,
                    None,
                    None,
                    f"webhook template does not render: {exc}",
                    "fix the Jinja expression (filters and names as in the shipped templates)",
                )
            ]
        try:
            body = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            return [
                Issue(
                    path,
                    None,
                    None,
                    f"webhook template does not render JSON: {exc}"
                    + (f" (line {line} of the rendered text)" if line else ""),
                    'write one JSON object {"method": …, "path": …, "body": …}, '
                    "with values through `| tojson`",
                )
            ]
        if not isinstance(body, dict) or not {"method", "path"} <= body.keys():
            return [
                Issue(
                    path,
                    None,
                    None,
                    "webhook template renders JSON that is not an object with method and path",
                    'write one JSON object {"method": …, "path": …, "body": …}',
                )
            ]
    return []
