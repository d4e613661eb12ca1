"""Day order, --force, sending-day dates (skips and held-back days), the dry run's promise."""

from __future__ import annotations

import hashlib
from contextlib import closing
from datetime import date
from pathlib import Path

import pendulum
import pytest

from tests.support.storefill import fill_store, table, write_plan
from warmup.engine import run_day
from warmup.errors import DayOrderError, InvalidInput
from warmup.plan import LoadedPlan, load_plan
from warmup.plan.calendar import day_date
from warmup.store import open_store
from warmup.store.copy import store_checksums

TABLES = (
    "customers",
    "consents",
    "consent_changes",
    "days",
    "runs",
    "allocations",
    "journeys",
    "outbox",
    "events",
    "locks",
)


def late(day: str) -> pendulum.DateTime:
    return pendulum.parse(f"{day}T23:00", tz="Europe/Prague")  # type: ignore[return-value]


def test_day_two_before_day_one_is_refused(plan1: LoadedPlan, plan1_store: str) -> None:
    with pytest.raises(DayOrderError, match="day 2 cannot run before day 1 has completed"):
        run_day(plan1, 2, now=late("2026-12-02"))
    assert table(plan1_store, "SELECT count(*) FROM days") == [(0,)]


def test_force_records_the_reason(plan1: LoadedPlan, plan1_store: str) -> None:
    result = run_day(plan1, 2, now=late("2026-12-02"), force_reason="day 1 sent by hand")
    assert result.status == "completed"
    assert table(plan1_store, "SELECT day, forced_reason FROM days") == [(2, "day 1 sent by hand")]


def test_day_outside_the_plan(plan1: LoadedPlan) -> None:
    with pytest.raises(InvalidInput, match="day 15 is not in plan"):
        run_day(plan1, 15)


def test_skipped_dates_and_held_days_move_the_ramp(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 30, seed=1)
    loaded = load_plan(
        write_plan(tmp_path, skip_weekdays=["sat", "sun"], skip_dates=["2026-12-02"])
    )
    plan = loaded.plan
    # 2026-12-01 is a Tuesday; the 2nd is a holiday; the 5th and 6th a weekend.
    assert [day_date(plan, d) for d in range(1, 5)] == [
        date(2026, 12, 1),
        date(2026, 12, 3),
        date(2026, 12, 4),
        date(2026, 12, 7),
    ]
    run_day(loaded, 1, now=late("2026-12-01"))
    # Day 2 was held back: it completes on the 8th, so day 3 moves to the 9th.
    second = run_day(loaded, 2, now=late("2026-12-08"))
    assert second.date == "2026-12-03"
    third = run_day(loaded, 3, now=late("2026-12-09"))
    assert third.date == "2026-12-09"
    assert table(store_path, "SELECT date FROM days ORDER BY day") == [
        ("2026-12-01",),
        ("2026-12-03",),
        ("2026-12-09",),
    ]


def _fingerprint(location: str) -> tuple[object, list[object]]:
    """The SQLite file's bytes, or every PostgreSQL table's rows and checksum."""
    with closing(open_store(location)) as store:
        if store.dialect == "postgresql":
            digest: object = store_checksums(store)
        else:
            store.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            digest = hashlib.sha256(Path(location).read_bytes()).hexdigest()
    counts = [table(location, f"SELECT count(*) FROM {name}")[0][0] for name in TABLES]
    return digest, counts


def test_dry_run_changes_nothing(plan1: LoadedPlan, plan1_store: str) -> None:
    run_day(plan1, 1, now=late("2026-12-01"))
    before = _fingerprint(plan1_store)
    result = run_day(plan1, 2, dry_run=True)
    assert _fingerprint(plan1_store) == before
    assert result.dry_run and result.status == "completed"
    assert result.allocation is not None and result.allocation["new"] == 5
    # Variant 1 on day 2 with the same limit: yesterday's five again, nobody added or removed.
    assert result.list_changes == {
        "list": "exclusion",
        "previous_day": 1,
        "added": 0,
        "removed": 0,
        "read_back": {"requests": 1, "seconds": 0.0},
    }
    assert len(result.samples) == 3 and all(s["subject"] for s in result.samples)
    assert result.webhook is not None and "LIST-ID-RESOLVED-AT-SYNC" in result.webhook["body"]
    # ids only Klaviyo returned are used: imported ones join by email, as the dispatcher does
    assert "/api/profile-bulk-import-jobs" in result.webhook["body"]
    funnel = {n.id: n for n in result.funnel}
    assert funnel["229"].entered == 400
    assert funnel["email"].entered == 5
    assert funnel["40"].out == {"yes": 5, "no": funnel["40"].entered - 5}
    # The real run afterwards finds exactly what the dry run showed.
    real = run_day(plan1, 2, now=late("2026-12-02"))
    assert real.allocation == result.allocation
    assert [s["email"] for s in real.samples] == [s["email"] for s in result.samples]


def test_dry_run_of_a_later_day_notes_the_refusal(plan1: LoadedPlan) -> None:
    result = run_day(plan1, 3, dry_run=True)
    assert any("a real run would be refused" in note for note in result.notes)
