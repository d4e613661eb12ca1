"""The clock: what time it is (:func:`now`, the one place warmup asks the machine), wall-clock
times in a plan's time zone, and the one way instants are shown to people.

``now`` is UTC; the store writes it (and any instant) with ``warmup.store.now_iso``. Checking a
plan's send times against its zone's clock changes (``warmup validate``) is
:mod:`warmup.wallclock`'s job, built on ``read_wall`` here.

A plan speaks in local times ("10:00" on each sending date); the store speaks in UTC instants.
Twice a year a zone with daylight saving has a night where a local time does not exist (the
clocks skip an hour forward) or happens twice (they go back). ``read_wall`` says which, and
``resolve`` turns a local time into one instant only when that is unambiguous or the plan chose
a reading (``schedule.clock_change: earlier | later``). Nothing here reads the machine's own
time zone: every zone is named.

``show`` is the single formatter for instants in messages: the plan's local time with its UTC
offset and the zone's name. Only ``--json`` output and the store carry UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo

ClockChange = Literal["earlier", "later"]
CLOCK_CHANGES: tuple[ClockChange, ...] = ("earlier", "later")


# In the tz database's list but not a place: `Factory` is the zone of a machine nobody set up
# (offset 0, abbreviation "-00"). `localtime` and `posixrules` are files of the machine's
# zoneinfo folder that follow the machine's own zone, so they are not in the list at all.
NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@cache
def _iana_names() -> frozenset[str]:
    # tzdata's own list of zone names (zones and their IANA links, e.g. US/Eastern), the same
    # on every machine, unlike the files under /usr/share/zoneinfo.
    text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip()) - NOT_PLACES


def is_zone_name(name: str) -> bool:
    """Whether ``name`` is an IANA time zone name (never one that means the machine's zone)."""
    return name in _iana_names()


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class WallTime:
    """What a local date and time means in a zone.

    ``kind`` is ``normal`` (one instant: ``earlier == later``), ``skipped`` (the clocks jump over
    it: ``earlier`` reads it with the offset after the jump, ``later`` with the one before, an
    hour apart for a one-hour change) or ``repeated`` (it happens twice: first and second).
    ``jump`` is the local time the clocks leave and the one they land on, for the messages.
    """

    local: datetime  # naive
    timezone: str
    kind: Literal["normal", "skipped", "repeated"]
    earlier: datetime
    later: datetime
    jump: tuple[str, str] | None = None

    def pick(self, reading: ClockChange) -> datetime:
        return self.earlier if reading == "earlier" else self.later

    def describe(self) -> str:
        """``02:30 does not exist on 2027-03-28 in Europe/Prague (the clocks go from 02:00 to
        03:00)`` and the like."""
        hhmm = self.local.strftime("%H:%M")
        day = self.local.date().isoformat()
        what = "does not exist" if self.kind == "skipped" else "happens twice"
        text = f"{hhmm} {what} on {day} in {self.timezone}"
        if self.jump is not None:
            text += f" (the clocks go from {self.jump[0]} to {self.jump[1]})"
        return text

    def readings(self) -> str:
        """Both instants, named by the setting that picks each."""
        return (
            f"`clock_change: earlier` means {show(self.earlier, self.timezone)}, "
            f"`clock_change: later` means {show(self.later, self.timezone)}"
        )


def read_wall(timezone: str, local: datetime) -> WallTime:
    """Classify a naive local datetime in ``timezone`` (PEP 495 folds, read back through UTC)."""
    tz = zone(timezone)
    local = local.replace(tzinfo=None, second=0, microsecond=0)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        moment = first.astimezone(UTC).astimezone(tz)
        return WallTime(local, timezone, "normal", moment, moment)
    a = first.astimezone(UTC).astimezone(tz)
    b = second.astimezone(UTC).astimezone(tz)
    low, high = (a, b) if a.astimezone(UTC) < b.astimezone(UTC) else (b, a)
    # A time that exists reads back as itself; a skipped one comes back shifted by the jump.
    kind: Literal["skipped", "repeated"] = (
        "repeated" if a.replace(tzinfo=None) == local else "skipped"
    )
    return WallTime(local, timezone, kind, low, high, _jump(tz, low, high))


def _jump(tz: ZoneInfo, low: datetime, high: datetime) -> tuple[str, str]:
    """The local times either side of the offset change between two instants (to the minute)."""
    lo, hi = low.astimezone(UTC), high.astimezone(UTC)
    before = low.utcoffset()
    while hi - lo > timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    change = hi.astimezone(tz)
    offset_before = before or timedelta(0)
    left = (hi + offset_before).replace(tzinfo=None)
    return left.strftime("%H:%M"), change.strftime("%H:%M")


def resolve(timezone: str, when: date, hhmm: str, reading: ClockChange | None) -> datetime:
    """``hhmm`` on ``when`` in ``timezone`` as one instant; a skipped or repeated time needs a
    ``reading``, else InvalidInput says so."""
    from warmup.errors import InvalidInput

    hour, minute = (int(part) for part in hhmm.split(":"))
    wall = read_wall(timezone, datetime.combine(when, time(hour, minute)))
    if wall.kind == "normal":
        return wall.earlier
    if reading is None:
        raise InvalidInput(
            f"send time {wall.describe()}",
            hint="set `clock_change: earlier` or `later` under the plan's `schedule:` "
            f"({wall.readings()}), or choose another time",
        )
    return wall.pick(reading)


def day_start(timezone: str, when: date) -> datetime:
    """The first instant of a local date (midnight; in the rare zone that skips midnight, the
    moment the clocks land)."""
    tz = zone(timezone)
    return datetime.combine(when, time(0), tz).astimezone(UTC).astimezone(tz)


def now() -> datetime:
    """The machine's time, in UTC: the one reading of the real clock (rehearsals pass their
    own ``now`` instead)."""
    return datetime.now(UTC)


def local_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the plan sends (``now`` defaults to the real clock; naive is UTC)."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(timezone)).date()


def show(moment: datetime | str, timezone: str, *, with_zone: bool = True) -> str:
    """An instant as people read it: ``2026-12-03 10:00 +01:00 Europe/Prague``.

    Seconds are shown only when they are not zero. ``moment`` may be a stored ISO string."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is not an instant")
    local = moment.astimezone(zone(timezone))
    clock = "%H:%M:%S" if local.second else "%H:%M"
    offset = local.strftime("%z")
    text = f"{local.strftime('%Y-%m-%d ' + clock)} {offset[:3]}:{offset[3:5]}"
    return f"{text} {timezone}" if with_zone else text


def iso_local(moment: datetime, timezone: str) -> str:
    """ISO 8601 with the zone's offset, e.g. for telling someone what to type after --now."""
    local = moment.astimezone(zone(timezone)).replace(microsecond=0)
    return local.isoformat(timespec="minutes" if not local.second else "seconds")


# warmup's own way of showing an instant, `2027-11-07 01:30 -05:00 America/New_York`, with the
# offset or the zone name (or both) left out.
_SHOWN = re.compile(
    r"^(?P<clock>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?|\d{1,2}:\d{2}(?::\d{2})?)"
    r"(?:\s*(?P<offset>[+-]\d{2}:?\d{2}|Z))?(?:\s+(?P<zone>[A-Za-z][A-Za-z0-9_+\-/]*))?$"
)


def parse_moment(text: str, timezone: str, *, now: datetime | None = None) -> datetime:
    """``--now`` for rehearsals: ISO 8601, or an instant as warmup prints it (``2027-11-07 01:30
    -05:00 America/New_York``). Without an offset it is local time in the plan's zone (or the
    zone it names); without a date it is that time today there (never the machine's). A local
    time the clocks skip or repeat is refused: the offset has to say which instant is meant, and
    an offset the named zone does not have at that time is refused too."""
    from warmup.errors import InvalidInput

    raw = text.strip()
    shown = _SHOWN.match(raw)
    named = shown.group("zone") if shown else None
    if named is not None and shown is not None:
        if not is_zone_name(named):
            raise InvalidInput(
                f"--now {text!r}: {named!r} is not a time zone",
                hint=f"write an IANA name like {timezone}, or leave it out (the plan's zone)",
            )
        timezone = named
        raw = shown.group("clock") + (shown.group("offset") or "")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            clock = time.fromisoformat(raw)
        except ValueError:
            parsed = None
        else:
            parsed = datetime.combine(local_today(timezone, now), clock)
    if parsed is None:
        raise InvalidInput(
            f"--now {text!r} is not a timestamp",
            hint="write it like 2026-12-03T10:05 (the plan's time zone), 10:05 (today there), "
            "2026-12-03T09:05:00+00:00 or as warmup prints it: 2026-12-03 10:05 +01:00 "
            "Europe/Prague",
        )
    if parsed.tzinfo is not None:
        if named is not None:
            _check_offset(text, parsed, named)
        return parsed
    if len(raw) == 10:  # a date alone: the start of that day
        return day_start(timezone, parsed.date())
    wall = read_wall(timezone, parsed)
    if wall.kind == "normal":
        return wall.earlier.replace(second=parsed.second)
    first, second = iso_local(wall.earlier, timezone), iso_local(wall.later, timezone)
    if wall.kind == "repeated":
        raise InvalidInput(
            f"--now {text!r} is ambiguous: {wall.describe()}",
            hint=f"write the offset: --now {first} for the first, --now {second} for the second",
        )
    raise InvalidInput(
        f"--now {text!r} is not a time on that day: {wall.describe()}",
        hint=f"write --now {first} or --now {second} (the instants either side of the jump)",
    )


def _check_offset(text: str, moment: datetime, timezone: str) -> None:
    """An offset written next to a zone name must be one that zone has at that local time."""
    from warmup.errors import InvalidInput

    wall = read_wall(timezone, moment.replace(tzinfo=None))
    readings = [wall.earlier] if wall.kind == "normal" else [wall.earlier, wall.later]
    if wall.kind != "skipped" and any(r.utcoffset() == moment.utcoffset() for r in readings):
        return
    offsets = " or ".join(show(r, timezone, with_zone=False)[-6:] for r in readings)
    raise InvalidInput(
        f"--now {text!r}: {timezone} is not at {moment.strftime('%z')[:3]}:"
        f"{moment.strftime('%z')[3:]} then"
        + (f": {wall.describe()}" if wall.kind == "skipped" else ""),
        hint=f"write {offsets}, or leave the offset out"
        if wall.kind != "skipped"
        else f"write --now {iso_local(wall.earlier, timezone)} or "
        f"--now {iso_local(wall.later, timezone)}",
    )
