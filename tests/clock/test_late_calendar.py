"""A late day as `warmup status` shows it before it runs (late, with the dates the rest will take),
and a late day that pushes the next one onto a clock-change night `warmup validate` never saw."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pendulum
import pytest
from typer.testing import CliRunner

from tests.support.clockplans import zoned_plan
from tests.support.storefill import fill_store, write_plan
from warmup.cli import app
from warmup.engine import run_day
from warmup.errors import InvalidInput
from warmup.plan import load_plan
from warmup.report.status import plan_status, render_table
from warmup.store import open_store

runner = CliRunner()
NY = "America/New_York"
NIGHT = (
    "day 2: send time 01:30 happens twice on 2027-11-07 in America/New_York (the clocks go from "
    "02:00 to 01:00)"
)


def at(text: str, tz: str) -> datetime:
    return pendulum.parse(text, tz=tz)  # type: ignore[return-value]


def test_status_calls_a_late_day_late_with_the_dates_the_run_will_use(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 60, seed=6)
    plan = write_plan(tmp_path, variant=1, skip_weekdays=["sat", "sun"])
    loaded = load_plan(plan)
    clock = at("2026-12-11T08:00", "Europe/Prague")  # day 1 was due on 2026-12-01
    before = plan_status(loaded, now=clock)
    assert [(d.day, d.date, d.status) for d in before.days[:3]] == [
        (1, "2026-12-01", "late"),
        (2, "2026-12-14", "planned"),
        (3, "2026-12-15", "planned"),
    ]
    assert before.to_json()["days"][0]["status"] == "late"
    row = render_table(before).splitlines()[2]
    assert row.split()[:3] == ["1", "2026-12-01", "late"] and row.split()[5] == "-"
    note = next(n for n in run_day(loaded, 1, now=clock).notes if n.startswith("the plan is late"))
    promised = [f"day {d.day} {d.date}" for d in before.days[1:]]
    assert note.endswith("the days after it move along: " + ", ".join(promised))
    after = plan_status(loaded, now=clock)
    assert [d.date for d in after.days[1:]] == [d.date for d in before.days[1:]]
    assert after.days[0].status == "completed"


def test_a_late_day_pushing_the_next_onto_a_repeated_night_is_flagged_before_it_runs(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 60, seed=7)
    # Planned 2027-10-24 … 2027-11-06: no date of the planned calendar is the 7 November night.
    plan = zoned_plan(tmp_path, timezone=NY, start="2027-10-24", send_time="01:30")
    assert runner.invoke(app, ["validate", str(plan)]).exit_code == 0
    loaded = load_plan(plan)
    clock = at("2027-11-06T12:00", NY)

    table = render_table(plan_status(loaded, now=clock))
    assert f"clock       {NIGHT} — add `clock_change: earlier` or `later`" in table
    result = run_day(loaded, 1, now=clock)
    late = next(n for n in result.notes if n.startswith("the plan is late"))
    assert "move along: day 2 2027-11-07, day 3 2027-11-08" in late
    assert (
        f"; on a clock change now: {NIGHT} — add `clock_change: earlier` or `later` under "
        "`schedule:` (`clock_change: earlier` means 2027-11-07 01:30 -04:00 America/New_York, "
        "`clock_change: later` means 2027-11-07 01:30 -05:00 America/New_York), or choose "
        "another time, before day 2 runs"
    ) in late

    # Day 1's mail went out (the dispatcher's part, not this test's).
    store = open_store(store_path)
    with store.transaction() as conn:
        conn.execute("UPDATE outbox SET status = 'sent'")
    store.close()
    status = plan_status(loaded, now=clock)
    assert status.next_action.startswith(NIGHT + " — add `clock_change: earlier` or `later`")
    assert status.next_action.endswith(f"until then `warmup run {plan} --day 2` refuses it")
    with pytest.raises(InvalidInput) as refused:
        run_day(loaded, 2, now=at("2027-11-07T00:10", NY))
    text = refused.value.render()
    assert "day 2 was planned for 2027-10-25 and moved to 2027-11-07" in text
    assert "`warmup status` lists every such night" in text
    assert "`warmup validate` lists every such day" not in text

    # With a reading chosen, status says which 01:30 and the JSON gives both instants.
    plan.write_text(plan.read_text().replace('"01:30"\n', '"01:30"\n  clock_change: later\n'))
    loaded = load_plan(plan)
    status = plan_status(loaded, now=clock)
    assert status.next_action.startswith(
        "day 2 can run after 2027-11-07 00:00 -04:00 America/New_York (mails at 01:30 -05:00)"
    )
    assert (
        f"clock       {NIGHT}; clock_change: later → 2027-11-07 01:30 -05:00 America/New_York"
    ) in render_table(status)
    assert json.loads(json.dumps(status.to_json()))["clock_changes"] == [
        {
            "day": 2,
            "date": "2027-11-07",
            "what": "send time",
            "local": "01:30",
            "kind": "repeated",
            "earlier": "2027-11-07T05:30:00+00:00",
            "later": "2027-11-07T06:30:00+00:00",
            "clock_change": "later",
            "at": "2027-11-07T06:30:00+00:00",
        }
    ]

    # The instants as warmup prints them are --now values the run takes: at the first 01:30
    # it waits for the second, at the second it mails.
    def dry_run_at(printed: str) -> str:
        done = runner.invoke(
            app, ["run", str(plan), "--day", "2", "--dry-run", "--now", f"{printed} {NY}"]
        )
        assert done.exit_code == 0, done.output
        return done.output

    assert "parked until 2027-11-07 01:30 -05:00" in dry_run_at("2027-11-07 01:30 -04:00")
    assert "engine-test day 2 (2027-11-07): completed" in dry_run_at("2027-11-07 01:30 -05:00")
