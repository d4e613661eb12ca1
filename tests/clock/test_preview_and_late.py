"""A dry run at a clock says what a real run at that clock does; a late day says so."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum

from tests.support.storefill import fill_store, write_plan
from warmup.engine import DayResult, run_day
from warmup.plan import load_plan
from warmup.report.status import plan_status


def at(text: str) -> datetime:
    return pendulum.parse(text, tz="Europe/Prague")  # type: ignore[return-value]


def same_as_real(dry: DayResult, real: DayResult) -> None:
    def core(result: DayResult) -> dict[str, Any]:
        doc = result.to_json()
        for key in ("dry_run", "notes", "outbox"):
            doc.pop(key)
        return doc

    assert core(dry) == core(real)


def test_dry_run_before_the_day_starts_waits_like_a_real_run(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 300, seed=5)
    loaded = load_plan(write_plan(tmp_path, variant=1, days=[5, 20, 30]))
    assert run_day(loaded, 1, now=at("2026-12-01T23:00")).status == "completed"

    dry = run_day(loaded, 2, now=at("2026-12-01T23:59"), dry_run=True)
    assert (dry.status, dry.due_at) == ("waiting", "2026-12-01T23:00:00+00:00")
    assert dry.allocation is None and dry.list_changes is None
    assert (
        "at 2026-12-01 23:59 +01:00 Europe/Prague a real run would stop here — day 2 starts at "
        "2026-12-02 00:00 +01:00 Europe/Prague: nothing is allocated, listed or mailed before then"
    ) in dry.notes[-1]
    real = run_day(loaded, 2, now=at("2026-12-01T23:59"))
    same_as_real(dry, real)
    assert real.notes[-1].startswith("day 2 starts at 2026-12-02 00:00 +01:00 Europe/Prague")

    # Mid-morning: allocated and listed, mail parked until the send time — in both.
    dry = run_day(loaded, 2, now=at("2026-12-02T08:00"), dry_run=True)
    assert (dry.status, dry.due_at) == ("waiting", "2026-12-02T09:00:00+00:00")
    assert dry.list_changes is not None and dry.list_changes["added"] > 0
    real = run_day(loaded, 2, now=at("2026-12-02T08:00"))
    same_as_real(dry, real)
    assert real.outbox.get("225") and not real.outbox.get("email")
    assert "parked until 2026-12-02 10:00 +01:00 Europe/Prague" in real.render()


def test_dry_run_without_now_previews_the_whole_day_and_says_when_it_starts(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 60, seed=5)
    plan = write_plan(tmp_path, variant=1)
    plan.write_text(plan.read_text().replace("2026-12-01", "2099-12-01"))
    result = run_day(load_plan(plan), 1, dry_run=True)
    assert result.status == "completed" and result.allocation is not None
    assert result.notes == [
        "this previews the whole day; it starts at 2099-12-01 00:00 +01:00 Europe/Prague and a "
        "real run before then waits (--now previews a run at a given clock)"
    ]


def test_a_late_day_says_so_with_the_dates_the_rest_now_take(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 60, seed=6)
    loaded = load_plan(write_plan(tmp_path, variant=1, skip_weekdays=["sat", "sun"]))
    clock = at("2026-12-11T08:00")  # a Friday; day 1 was due on Tuesday 2026-12-01
    assert plan_status(loaded, now=clock).next_action.startswith(
        "day 1 is late (planned for 2026-12-01; its send time has passed, so it mails at once"
    )
    result = run_day(loaded, 1, now=clock)
    late = [note for note in result.notes if note.startswith("the plan is late")]
    assert late == [
        "the plan is late: day 1 was planned for 2026-12-01, 10 days before today (2026-12-11 "
        "in Europe/Prague); its send time 2026-12-01 10:00 +01:00 Europe/Prague has passed, so "
        "it mails as soon as its customers are allocated and listed; the days after it move "
        "along: day 2 2026-12-14, day 3 2026-12-15, day 4 2026-12-16, day 5 2026-12-17, day 6 "
        "2026-12-18, day 7 2026-12-21, day 8 2026-12-22, day 9 2026-12-23, day 10 2026-12-24, "
        "day 11 2026-12-25, day 12 2026-12-28, day 13 2026-12-29, day 14 2026-12-30"
    ]
    # The calendar `warmup status` shows afterwards is the one the note promised.
    dates = [d.date for d in plan_status(loaded, now=clock).days]
    assert dates[1:4] == ["2026-12-14", "2026-12-15", "2026-12-16"]
    assert dates[-1] == "2026-12-30"
    # A day run on its own date gets no such note.
    on_time = run_day(loaded, 2, now=at("2026-12-14T11:00"))
    assert not [note for note in on_time.notes if "late" in note]


def test_a_completed_day_at_an_earlier_clock_does_nothing_in_both(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 300, seed=5)
    loaded = load_plan(write_plan(tmp_path, variant=1, days=[5, 20, 30]))
    assert run_day(loaded, 1, now=at("2026-12-01T11:00")).status == "completed"
    # Before the day's send time: its customers were mailed long ago.
    dry = run_day(loaded, 1, now=at("2026-12-01T08:00"), dry_run=True)
    real = run_day(loaded, 1, now=at("2026-12-01T08:00"))
    for result in (dry, real):
        assert (result.status, result.due_at) == ("completed", None)
        assert result.notes == [
            "day 1's allocation was done earlier and kept as it was; "
            "5 of its emails are still to send"
        ]
        assert "would stop here" not in result.render()
    same_as_real(dry, real)
