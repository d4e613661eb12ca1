"""Paced sending over the day's send window: the schedule itself, a late start that catches up
without a burst, and the real dispatcher following it (with time made to pass instantly)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.email.email_fixtures import add_customers, add_email_rows, statuses, write_plan
from warmup.dispatch.email import drain_email
from warmup.email import window as window_module
from warmup.email.window import SendWindow, schedule_slot
from warmup.plan import load_plan
from warmup.store import Store, days

TZ = ZoneInfo("Europe/Prague")
START = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)
WINDOW = SendWindow(START, START + timedelta(hours=6))


def _slots(window: SendWindow, total: int, done: int, begun: datetime) -> list[datetime]:
    return [schedule_slot(window, total, done, i, begun) for i in range(done, total)]


def test_an_even_window_spreads_the_day_evenly() -> None:
    slots = _slots(WINDOW, 600, 0, START - timedelta(hours=1))
    assert slots[0] == START
    assert slots[300] == START + timedelta(hours=3)
    per_hour = Counter(int((s - START).total_seconds() // 3600) for s in slots)
    assert set(per_hour.values()) == {100}


def test_an_hourly_ramp_climbs_hour_by_hour() -> None:
    ramp = SendWindow(START, START + timedelta(hours=6), "hourly_ramp")
    slots = _slots(ramp, 2100, 0, START)
    per_hour = Counter(int((s - START).total_seconds() // 3600) for s in slots)
    # Hours 1..6 carry 1..6 parts of 21.
    assert [per_hour[h] for h in range(6)] == [100, 200, 300, 400, 500, 600]


def test_a_late_start_catches_up_over_the_rest_of_the_window_without_a_burst() -> None:
    late = START + timedelta(hours=3)
    slots = _slots(WINDOW, 600, 0, late)
    assert slots[0] == late and slots[-1] < WINDOW.end
    per_minute = Counter(int((s - late).total_seconds() // 60) for s in slots)
    # Planned: 100 an hour (1.67 a minute). Late by half the window: twice that, never more.
    assert max(per_minute.values()) <= 4
    assert len(slots) == 600
    after_the_end = _slots(WINDOW, 600, 450, WINDOW.end + timedelta(minutes=30))
    gaps = {round((b - a).total_seconds()) for a, b in itertools.pairwise(after_the_end)}
    assert gaps == {36}  # the window's average rate: 6 hours / 600


def test_the_dispatcher_follows_the_window(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = write_plan(tmp_path)
    plan = yaml.safe_load(loaded.path.read_text())
    plan["schedule"]["send_window"] = {"start": "10:00", "end": "11:00"}
    loaded.path.write_text(yaml.safe_dump(plan))
    loaded = load_plan(loaded.path)
    ids = add_customers(store, 12)
    add_email_rows(store, 1, ids)
    fake = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake[0] += seconds

    monkeypatch.setattr(window_module, "_sleep", sleep)
    monkeypatch.setattr(window_module, "_monotonic", lambda: fake[0])
    clock_at = datetime(2026, 12, 1, 9, 59, tzinfo=TZ)
    report = drain_email(loaded, store, 1, clock=lambda: clock_at)
    assert report.sent == 12
    assert statuses(store, 1) == {"sent": 12}
    # First at 10:00 (a minute after the run began), then one every 5 minutes.
    assert round(sum(slept)) == 60 + 11 * 300
    assert round(slept[0]) == 60


def test_a_day_pushed_by_a_held_back_day_paces_on_its_own_date(
    tmp_path: Path, store: Store
) -> None:
    # Day 1 (planned 2026-12-01) completed only on 12-03: day 2 falls on 12-04, and its send
    # window opens that morning, not on the plan's first-guess 12-02.
    loaded = write_plan(tmp_path)
    plan = yaml.safe_load(loaded.path.read_text())
    plan["schedule"]["send_window"] = {"start": "10:00", "end": "11:00"}
    loaded.path.write_text(yaml.safe_dump(plan))
    loaded = load_plan(loaded.path)
    days.start(
        store.backend, 1, "2026-12-01", started_at="2026-12-01T09:00:00+00:00", forced_reason=None
    )
    days.finish(store.backend, 1, "completed", "2026-12-03T12:00:00+00:00")
    add_email_rows(store, 2, add_customers(store, 2))
    pacer = window_module.window_pacer(loaded, store, 2, datetime(2026, 12, 4, 8, tzinfo=TZ))
    assert pacer is not None
    assert pacer.window.start == datetime(2026, 12, 4, 10, tzinfo=TZ)
