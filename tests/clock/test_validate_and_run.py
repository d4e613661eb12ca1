"""A send time the clocks skip or repeat: told at `warmup validate` with the line and the instants,
chosen with `schedule.clock_change`, and kept to by the engine and `--now`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.clockplans import zoned_plan
from tests.support.storefill import fill_store
from warmup.cli import app
from warmup.clock import day_start
from warmup.engine import run_day
from warmup.errors import InvalidInput
from warmup.plan import load_plan

runner = CliRunner()


def where(path: Path, text: str, value: str) -> str:
    """``LINE:COL`` of ``value`` on the line holding ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return f"{number}:{line.index(value, line.index(text)) + 1}"
    raise AssertionError(text)


def test_validate_names_the_line_and_both_instants(tmp_path: Path) -> None:
    # Prague springs forward on Sunday 2027-03-28 (day 7); New York falls back on 2026-11-01.
    prague = zoned_plan(tmp_path, timezone="Europe/Prague", start="2027-03-22", send_time="02:30")
    result = runner.invoke(app, ["validate", str(prague)])
    assert result.exit_code == 2, result.output
    at = where(prague, 'send_time: "02:30"', '"02:30"')
    assert (
        f"{prague}:{at}: day 7: send time 02:30 does not exist on 2027-03-28 in "
        "Europe/Prague (the clocks go from 02:00 to 03:00) — add `clock_change: earlier` or "
        "`later` under `schedule:` (`clock_change: earlier` means 2027-03-28 01:30 +01:00 "
        "Europe/Prague, `clock_change: later` means 2027-03-28 03:30 +02:00 Europe/Prague), "
        "or choose another time"
    ) in result.output
    assert "1 problem found" in result.output

    ny_dir = tmp_path / "ny"
    ny_dir.mkdir()
    ny = zoned_plan(
        ny_dir, timezone="America/New_York", start="2026-10-26", day_send_times={7: "01:30"}
    )
    result = runner.invoke(app, ["validate", str(ny)])
    assert result.exit_code == 2, result.output
    at = where(ny, 'send_time: "01:30"', '"01:30"')
    assert (
        f"{ny}:{at}: day 7: send time 01:30 happens twice on 2026-11-01 in America/New_York "
        "(the clocks go from 02:00 to 01:00)"
    ) in result.output
    assert "2026-11-01 01:30 -04:00" in result.output and "2026-11-01 01:30 -05:00" in result.output


def test_a_chosen_reading_validates_and_the_summary_says_the_instant(tmp_path: Path) -> None:
    # Sydney: forward on 2026-10-04 (day 2), back on 2027-04-04 (a later plan's day 1).
    plan = zoned_plan(
        tmp_path,
        timezone="Australia/Sydney",
        start="2026-10-03",
        send_time="02:30",
        clock_change="later",
    )
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert (
        "  clock      day 2: send time 02:30 does not exist on 2026-10-04 in Australia/Sydney "
        "(the clocks go from 02:00 to 03:00); clock_change: later → 2026-10-04 03:30 +11:00 "
        "Australia/Sydney"
    ) in result.output


def test_a_wait_until_a_fixed_time_is_checked_in_the_scenario(tmp_path: Path) -> None:
    from tests.support.plans import REPO

    scenario = tmp_path / "scenario.yaml"
    text = (REPO / "scenarios" / "variant-1.yaml").read_text()
    scenario.write_text(text.replace("until: send_time", 'until: "02:30"'))
    plan = zoned_plan(tmp_path, timezone="Australia/Sydney", start="2027-04-04")
    plan.write_text(plan.read_text().replace(f"{REPO}/scenarios/variant-1.yaml", str(scenario)))
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 2, result.output
    at = where(scenario, 'until: "02:30"', '"02:30"')
    assert (
        f"{scenario}:{at}: day 1: wait #256 02:30 happens twice on 2027-04-04 in "
        "Australia/Sydney (the clocks go from 03:00 to 02:00)"
    ) in result.output


@pytest.mark.parametrize(
    ("tz", "start", "reading", "due"),
    [
        ("Australia/Sydney", "2027-04-04", "earlier", "2027-04-03T15:30:00+00:00"),
        ("Australia/Sydney", "2027-04-04", "later", "2027-04-03T16:30:00+00:00"),
        ("Europe/Prague", "2027-03-28", "earlier", "2027-03-28T00:30:00+00:00"),
        ("Europe/Prague", "2027-03-28", "later", "2027-03-28T01:30:00+00:00"),
    ],
)
def test_the_engine_waits_for_the_chosen_instant(
    tmp_path: Path, store_path: Path, tz: str, start: str, reading: str, due: str
) -> None:
    fill_store(store_path, 40, seed=2)
    loaded = load_plan(
        zoned_plan(tmp_path, timezone=tz, start=start, send_time="02:30", clock_change=reading)
    )
    after_midnight = day_start(tz, date.fromisoformat(start)) + timedelta(minutes=10)
    result = run_day(loaded, 1, now=after_midnight)
    assert (result.status, result.due_at) == ("waiting", due)
    parked = next(n for n in result.to_json()["funnel"] if n["id"] == "256")
    assert parked["due_at"] == due and parked["parked"] > 0


def test_the_engine_refuses_an_unresolved_night_before_recording_anything(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 20, seed=2)
    loaded = load_plan(
        zoned_plan(tmp_path, timezone="Australia/Sydney", start="2027-04-04", send_time="02:30")
    )
    with pytest.raises(InvalidInput, match="02:30 happens twice on 2027-04-04"):
        run_day(loaded, 1, now=datetime(2027, 4, 3, 14, tzinfo=UTC))
    from tests.support.storefill import table

    assert table(store_path, "SELECT count(*) FROM days")[0][0] == 0


def test_run_now_in_the_repeated_hour_is_refused_with_how_to_write_it(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 20, seed=2)
    plan = str(zoned_plan(tmp_path, timezone="America/New_York", start="2026-11-01"))
    result = runner.invoke(
        app, ["run", plan, "--day", "1", "--dry-run", "--now", "2026-11-01T01:30"]
    )
    assert result.exit_code == 2, result.output
    assert "--now 2026-11-01T01:30-04:00 for the first" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["run", plan, "--day", "1", "--dry-run", "--now", "2026-11-01T01:30-05:00"]
    )
    assert result.exit_code == 0, result.output
    assert "a real run would stop here" in result.output
    assert "until 2026-11-01 10:00 -05:00 America/New_York" in result.output
