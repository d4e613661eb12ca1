from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app
from warmup.errors import PlanError
from warmup.plan import load_plan, load_scenario

HERE = Path(__file__).parent
REPO = HERE.parent.parent
BROKEN_PLANS = sorted((HERE / "broken_plans").glob("*.yaml"))
BROKEN_SCENARIOS = sorted((HERE / "broken_scenarios").glob("*.yaml"))
runner = CliRunner()


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


def test_shipped_plan_and_scenarios_are_valid() -> None:
    loaded = load_plan(REPO / "plans" / "example.yaml")
    assert loaded.plan.day_count == 14
    ids = {n.id for n in loaded.scenario.nodes}
    assert {"7", "19", "40", "225", "229", "256", "299", "296", "297"} <= ids
    v2 = load_scenario(REPO / "scenarios" / "variant-2.yaml")
    assert {"331", "558"} <= {n.id for n in v2.nodes}


@pytest.mark.parametrize("plan_file", BROKEN_PLANS, ids=lambda p: p.stem)
def test_broken_plan_reports_location_and_fix(plan_file: Path) -> None:
    result = runner.invoke(app, ["validate", str(plan_file)])
    assert result.exit_code == 2, result.output
    assert expected(plan_file) in result.output
    assert "Traceback" not in result.output
    # every line but the count names the file (or a template) and a line
    for line in result.output.strip().splitlines()[:-1]:
        assert ".yaml:" in line or ".j2" in line, line


@pytest.mark.parametrize("scenario_file", BROKEN_SCENARIOS, ids=lambda p: p.stem)
def test_broken_scenario_reports_location_and_fix(scenario_file: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_scenario(scenario_file)
    text = caught.value.render()
    assert expected(scenario_file) in text
    assert f"{scenario_file}:" in text


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (HERE / "broken_plans" / "two_problems.yaml").read_text()
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan(plan)
    messages = [i.message for i in caught.value.issues]
    assert any("time zone" in m for m in messages)
    assert any("unknown key `prot`" in m for m in messages)


def test_template_syntax_error_names_template_file_and_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "email").mkdir(parents=True)
    (templates / "klaviyo").mkdir()
    for src in (REPO / "templates" / "klaviyo").iterdir():
        (templates / "klaviyo" / src.name).write_text(src.read_text())
    for src in (REPO / "templates" / "email").iterdir():
        (templates / "email" / src.name).write_text(src.read_text())
    (templates / "email" / "day-03.j2").write_text(
        "{% block subject %}Hi{% endblock %}\n{% block text %}\n{{ customer.first_name | }}\n"
        "{% endblock %}\n"
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (REPO / "plans" / "example.yaml")
        .read_text()
        .replace("../scenarios/variant-1.yaml", "variant-1")
        .replace("templates: ../templates", "templates: templates")
    )
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 2
    assert "day-03.j2:3: template syntax error" in result.output


def test_valid_plan_prints_summary_and_exits_zero(example_plan: Path) -> None:
    result = runner.invoke(app, ["validate", str(example_plan)])
    assert result.exit_code == 0, result.output
    assert "plan acme-newsletter: valid" in result.output
    assert "14, day 1 on 2026-12-01 (Europe/Prague)" in result.output
    assert "14:all" in result.output


@pytest.mark.parametrize("kind", ["plan", "scenario"])
def test_schema_is_json_schema_that_accepts_shipped_files(kind: str) -> None:
    import jsonschema
    import yaml

    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    shipped = REPO / ("plans/example.yaml" if kind == "plan" else "scenarios/variant-1.yaml")
    data = yaml.safe_load(
        shipped.read_text()
        .replace("yes:", "'yes':")
        .replace("no:", "'no':")
        .replace(" on:", " 'on':")
    )
    if kind == "scenario":
        for node in data["nodes"]:
            for key in ("id", "next", "yes", "no"):
                if isinstance(node.get(key), int):
                    node[key] = str(node[key])
    else:
        data["start_date"] = str(data["start_date"])
        data["schedule"]["skip_dates"] = [str(d) for d in data["schedule"]["skip_dates"]]
    jsonschema.validate(data, schema)
    data["unexpected"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_template_field_no_customer_has_fails_validate(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    day2 = tmp_path / "templates" / "email" / "day-02.j2"
    day2.write_text(
        day2.read_text().replace(
            "{% block subject %}", "{% block subject %}{{ customer.favourite_colour }}", 1
        )
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (REPO / "plans" / "example.yaml")
        .read_text()
        .replace("../scenarios/variant-1.yaml", "variant-1")
        .replace("templates: ../templates", "templates: templates")
    )
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 2, result.output
    assert f"{day2}:" in result.output
    assert "favourite_colour" in result.output


def test_plan_and_scenario_mistakes_are_reported_together(tmp_path: Path) -> None:
    scenario = tmp_path / "flow.yaml"
    scenario.write_text(
        (REPO / "scenarios" / "variant-1.yaml")
        .read_text()
        .replace("    yes: 19\n", "    yes: 91\n")
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (REPO / "plans" / "example.yaml")
        .read_text()
        .replace("../scenarios/variant-1.yaml", "flow.yaml")
        .replace("templates: ../templates", f"templates: {REPO / 'templates'}")
        .replace("timezone: Europe/Prague", "timezone: Europe/Prag")
    )
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 2
    assert f"{plan}:4:11: timezone:" in result.output
    assert f"{scenario}:" in result.output and "`91` is not a node" in result.output
    assert "node `19` is unreachable" in result.output  # what the dangling edge cut off


def test_paths_in_the_summary_are_normalised() -> None:
    loaded = load_plan(REPO / "plans" / "example.yaml")
    assert ".." not in str(loaded.scenario_path)
    assert loaded.scenario_path == REPO / "scenarios" / "variant-1.yaml"
