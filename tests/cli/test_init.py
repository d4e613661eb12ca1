from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.app.scaffold import EndVolume, ramp, scaffold_plan
from warmup.cli import app
from warmup.errors import InvalidInput
from warmup.plan import load_plan

runner = CliRunner()


def test_init_writes_a_plan_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    result = runner.invoke(
        app,
        [
            "init",
            str(target),
            "--days",
            "6",
            "--start-date",
            "2027-02-01",
            "--timezone",
            "America/New_York",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {target / 'plan.yaml'}" in result.output
    loaded = load_plan(target / "plan.yaml")
    assert loaded.plan.name == "acme"
    assert loaded.plan.start_date == date(2027, 2, 1)
    assert loaded.plan.timezone == "America/New_York"
    assert loaded.scenario.name == "bloomreach-warmup-variant-1"
    assert loaded.templates_dir == target / "templates"
    assert sorted(p.name for p in (target / "templates" / "email").glob("day-*")) == [
        f"day-{i:02d}.j2" for i in range(1, 7)
    ]
    validate = runner.invoke(app, ["validate", str(target / "plan.yaml")])
    assert validate.exit_code == 0, validate.output


def test_variant_2_reuses_templates(tmp_path: Path) -> None:
    loaded = scaffold_plan(tmp_path / "v2", variant=2, days=5, name="v2-plan")
    assert [d.template for d in loaded.plan.schedule.days] == [
        "day-01",
        "day-01",
        "day-02",
        "day-02",
        "day-03",
    ]
    assert loaded.scenario.name == "bloomreach-warmup-variant-2"
    # Seed 004's variant 2 rules travel with the scaffold: #558 from day 4, lead time = reuse.
    assert loaded.plan.schedule.exclusion_first_from_day == 4
    assert loaded.plan.schedule.klaviyo_lead_days == 2


def test_variant_2_shorter_than_the_seeds_day_4_still_validates(tmp_path: Path) -> None:
    """`warmup init --variant 2 --days 3` wrote `exclusion_first_from_day: 4`, which
    `validate` refuses (day 4 never comes): init failed on its own plan, exit 2."""
    loaded = scaffold_plan(tmp_path / "short", variant=2, days=3, name="short")
    assert loaded.plan.schedule.exclusion_first_from_day is None
    assert "past this 3-day ramp" in (tmp_path / "short" / "plan.yaml").read_text()


def test_variant_1_leaves_variant_2_rules_out(tmp_path: Path) -> None:
    loaded = scaffold_plan(tmp_path / "v1", variant=1, days=5, name="v1-plan")
    assert loaded.plan.schedule.exclusion_first_from_day is None
    assert loaded.plan.schedule.klaviyo_lead_days is None


def test_more_days_than_shipped_templates(tmp_path: Path) -> None:
    loaded = scaffold_plan(tmp_path / "long", days=20)
    assert loaded.plan.day_count == 20
    assert (tmp_path / "long" / "templates" / "email" / "day-20.j2").read_text() == (
        tmp_path / "long" / "templates" / "email" / "day-06.j2"
    ).read_text()


def test_count_ramp_is_geometric_and_ends_on_the_volume() -> None:
    values = ramp(8, EndVolume.parse("20000"))
    assert values[0] == 50 and values[-1] == 20000
    ints = [int(v) for v in values]
    assert ints == sorted(ints)
    ratios = [b / a for a, b in pairwise(ints)]
    assert max(ratios) - min(ratios) < 0.05


def test_percent_ramp_ends_on_all_or_the_share() -> None:
    assert ramp(14, EndVolume.parse("all"))[-1] == "all"
    values = ramp(5, EndVolume.parse("40%"))
    assert values[-1] == "40%" and values[0] == "1.0%"
    assert ramp(1, EndVolume.parse("300")) == [300]


def test_small_end_volume_starts_at_it() -> None:
    assert ramp(3, EndVolume.parse("10")) == [10, 10, 10]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    scaffold_plan(tmp_path / "p")
    (tmp_path / "p" / "plan.yaml").write_text("# mine\n")
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'p' / 'plan.yaml'} already exists" in result.output
    assert "--force" in result.output
    assert (tmp_path / "p" / "plan.yaml").read_text() == "# mine\n"
    forced = runner.invoke(app, ["init", str(tmp_path / "p"), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_plan(tmp_path / "p" / "plan.yaml").plan.day_count == 14


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("end_volume", "lots", "--end-volume"),
        ("end_volume", "0", "--end-volume"),
        ("end_volume", "150%", "--end-volume"),
        ("timezone", "Mars/Base", "--timezone"),
        ("name", "no spaces allowed", "--name"),
        ("variant", 3, "--variant"),
    ],
)
def test_bad_options_name_the_option_and_write_nothing(
    tmp_path: Path, option: str, value: object, named: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        scaffold_plan(tmp_path / "x", **{option: value})  # type: ignore[arg-type]
    assert named in caught.value.render()
    assert caught.value.hint
    assert not (tmp_path / "x").exists()
