"""Local times against both clock changes of a year, in both hemispheres (warmup.clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from warmup.clock import day_start, parse_moment, read_wall, resolve, show
from warmup.errors import InvalidInput

# (zone, date, local time, kind, earlier instant UTC, later instant UTC, clocks go from → to)
NIGHTS = [
    # Europe, spring: 02:00 CET → 03:00 CEST; autumn: 03:00 CEST → 02:00 CET
    ("Europe/Prague", "2027-03-28", "02:30", "skipped", "00:30", "01:30", ("02:00", "03:00")),
    ("Europe/Prague", "2026-10-25", "02:30", "repeated", "00:30", "01:30", ("03:00", "02:00")),
    # North America: 02:00 EST → 03:00 EDT; 02:00 EDT → 01:00 EST
    ("America/New_York", "2027-03-14", "02:30", "skipped", "06:30", "07:30", ("02:00", "03:00")),
    ("America/New_York", "2026-11-01", "01:30", "repeated", "05:30", "06:30", ("02:00", "01:00")),
    # Southern hemisphere, the other way round: October forward, April back
    ("Australia/Sydney", "2026-10-04", "02:30", "skipped", "15:30", "16:30", ("02:00", "03:00")),
    ("Australia/Sydney", "2027-04-04", "02:30", "repeated", "15:30", "16:30", ("03:00", "02:00")),
]


@pytest.mark.parametrize(
    ("tz", "day", "hhmm", "kind", "earlier", "later", "jump"), NIGHTS, ids=lambda v: str(v)
)
def test_both_changes_in_both_hemispheres(
    tz: str, day: str, hhmm: str, kind: str, earlier: str, later: str, jump: tuple[str, str]
) -> None:
    when = date.fromisoformat(day)
    wall = read_wall(tz, datetime.fromisoformat(f"{day}T{hhmm}"))
    assert wall.kind == kind
    assert wall.jump == jump
    utc_day = when if tz != "Australia/Sydney" else date.fromordinal(when.toordinal() - 1)
    assert wall.earlier.astimezone(UTC) == datetime.fromisoformat(f"{utc_day}T{earlier}+00:00")
    assert wall.later.astimezone(UTC) == datetime.fromisoformat(f"{utc_day}T{later}+00:00")
    with pytest.raises(InvalidInput, match=f"{hhmm} .* on {day} in {tz}"):
        resolve(tz, when, hhmm, None)
    assert resolve(tz, when, hhmm, "earlier") == wall.earlier
    assert resolve(tz, when, hhmm, "later") == wall.later
    # The same local time an hour away from the change is one instant.
    assert read_wall(tz, datetime.fromisoformat(f"{day}T05:30")).kind == "normal"


def test_ten_stays_ten_local_across_each_change() -> None:
    # Two days apart on the wall, 47 or 49 hours apart in fact.
    for tz, before, after, hours in [
        ("Europe/Prague", "2027-03-27", "2027-03-29", 47),
        ("Europe/Prague", "2026-10-24", "2026-10-26", 49),
        ("America/New_York", "2026-10-31", "2026-11-02", 49),
        ("Australia/Sydney", "2026-10-03", "2026-10-05", 47),
        ("Australia/Sydney", "2027-04-03", "2027-04-05", 49),
    ]:
        a = resolve(tz, date.fromisoformat(before), "10:00", None)
        b = resolve(tz, date.fromisoformat(after), "10:00", None)
        assert (a.hour, b.hour) == (10, 10)
        assert b.astimezone(UTC) - a.astimezone(UTC) == timedelta(hours=hours), tz


def test_shown_with_the_zone_offset_half_and_quarter_hours_too() -> None:
    moment = datetime(2026, 12, 3, 4, 15, tzinfo=UTC)
    assert show(moment, "Asia/Kolkata") == "2026-12-03 09:45 +05:30 Asia/Kolkata"
    assert show(moment, "Asia/Kathmandu") == "2026-12-03 10:00 +05:45 Asia/Kathmandu"
    assert show("2026-12-03T04:15:00+00:00", "Europe/Prague", with_zone=False) == (
        "2026-12-03 05:15 +01:00"
    )
    assert show(moment, "America/St_Johns") == "2026-12-03 00:45 -03:30 America/St_Johns"


def test_a_day_that_skips_midnight_starts_when_the_clocks_land() -> None:
    # Chile moves its clocks at midnight: 2026-09-06 00:00 never happens in Santiago.
    start = day_start("America/Santiago", date(2026, 9, 6))
    assert start.astimezone(UTC) == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert show(start, "America/Santiago") == "2026-09-06 01:00 -03:00 America/Santiago"


def test_now_in_a_repeated_or_skipped_hour_needs_an_offset() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_moment("2026-11-01T01:30", "America/New_York")
    assert caught.value.render() == (
        "--now '2026-11-01T01:30' is ambiguous: 01:30 happens twice on 2026-11-01 in "
        "America/New_York (the clocks go from 02:00 to 01:00) — write the offset: "
        "--now 2026-11-01T01:30-04:00 for the first, --now 2026-11-01T01:30-05:00 for the second"
    )
    with pytest.raises(InvalidInput, match="02:30 does not exist on 2027-03-28 in Europe/Prague"):
        parse_moment("2027-03-28T02:30", "Europe/Prague")
    second = parse_moment("2026-11-01T01:30-05:00", "America/New_York")
    assert second.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert parse_moment("2026-11-01T01:30Z", "America/New_York").hour == 1


def test_a_time_alone_takes_the_plan_zones_date() -> None:
    # 23:00 UTC on 2026-12-01 is already 2 December in Prague and still 1 December in Adak.
    machine_now = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    prague = parse_moment("10:05", "Europe/Prague", now=machine_now)
    assert prague.isoformat() == "2026-12-02T10:05:00+01:00"
    adak = parse_moment("10:05", "America/Adak", now=machine_now)
    assert adak.isoformat() == "2026-12-01T10:05:00-10:00"
    assert parse_moment("2026-12-03", "Europe/Prague").isoformat() == "2026-12-03T00:00:00+01:00"
