"""`warmup validate`: each sending day's local times against its zone's clock changes.

Not a clock: what time it is comes from :func:`warmup.clock.now`; this module checks a plan.

A send time (or a scenario wait's ``until: "HH:MM"``) that the clocks skip or repeat on one of
the plan's sending dates is an error pointing at the line that sets it, with both instants it
could mean, unless ``schedule.clock_change`` chose a reading; then ``notes`` says which instant
each such day uses. Dates are the planned calendar's: a day held back later is checked again
when it runs (``warmup.plan.calendar.local_time`` refuses the same way), and ``shifted_times`` with
``dates`` checks the dates days take once earlier days ran late (for `warmup status` and the late
note of `warmup run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from warmup.clock import ClockChange, WallTime, read_wall, show
from warmup.errors import Issue
from warmup.plan import LoadedPlan
from warmup.plan.calendar import day_date
from warmup.plan.scenario import WaitNode
from warmup.plan.yamlpos import Positioned, load_yaml


@dataclass(frozen=True)
class Shifted:
    """One sending day whose local time the clocks skip or repeat."""

    day: int
    what: str  # "send time" or "wait #256"
    wall: WallTime
    file: Path
    line: int | None
    column: int | None


def _times(loaded: LoadedPlan) -> list[tuple[int, str, str, Path, tuple[str | int, ...]]]:
    """(day, what, HH:MM, file, YAML path) of every local time a sending day uses."""
    plan = loaded.plan
    schedule = plan.schedule
    out: list[tuple[int, str, str, Path, tuple[str | int, ...]]] = []
    waits = [
        (index, node)
        for index, node in enumerate(loaded.scenario.nodes)
        if isinstance(node, WaitNode) and node.until not in (None, "send_time")
    ]
    uses_send_time = any(
        isinstance(node, WaitNode) and node.until == "send_time" for node in loaded.scenario.nodes
    )
    for index, settings in enumerate(schedule.days):
        number = settings.day
        if uses_send_time:
            where: tuple[str | int, ...] = (
                ("schedule", "days", index, "send_time")
                if settings.send_time is not None
                else ("schedule", "send_time")
            )
            out.append((number, "send time", schedule.send_time_for(number), loaded.path, where))
        for node_index, node in waits:
            out.append(
                (
                    number,
                    f"wait #{node.id}",
                    str(node.until),
                    loaded.scenario_path,
                    ("nodes", node_index, "until"),
                )
            )
    return out


def shifted_times(loaded: LoadedPlan, dates: Mapping[int, date] | None = None) -> list[Shifted]:
    """Every sending day's local time that does not name exactly one instant: on the planned
    calendar, or with ``dates`` only those days, on those dates."""
    plan = loaded.plan
    files: dict[Path, Positioned] = {}
    found: list[Shifted] = []
    planned: dict[int, date] = {}
    for number, what, hhmm, file, where in _times(loaded):
        if dates is not None and number not in dates:
            continue
        when = (
            dates[number]
            if dates is not None
            else planned.setdefault(number, day_date(plan, number))
        )
        hour, minute = (int(part) for part in hhmm.split(":"))
        wall = read_wall(plan.timezone, datetime.combine(when, time(hour, minute)))
        if wall.kind == "normal":
            continue
        if file not in files:
            files[file] = load_yaml(file)
        positioned = files[file]
        spot = positioned.where(where) or positioned.where(where[:1])
        line, column = spot or (None, None)
        found.append(Shifted(number, what, wall, file, line, column))
    return found


def check_wall_times(loaded: LoadedPlan) -> list[Issue]:
    """Issues for skipped or repeated local times the plan has not chosen a reading for."""
    if loaded.plan.schedule.clock_change is not None:
        return []
    return [
        Issue(
            s.file,
            s.line,
            s.column,
            f"day {s.day}: {s.what} {s.wall.describe()}",
            f"add `clock_change: earlier` or `later` under `schedule:` ({s.wall.readings()}), "
            "or choose another time",
        )
        for s in shifted_times(loaded)
    ]


def notes(loaded: LoadedPlan) -> list[str]:
    """With ``clock_change`` set: the instant each affected day uses, for the summary."""
    reading = loaded.plan.schedule.clock_change
    if reading is None:
        return []
    return [say(s, reading) for s in shifted_times(loaded)]


def say(s: Shifted, reading: ClockChange | None) -> str:
    """One night in words: the instant the plan's reading picks, or what to add to choose."""
    text = f"day {s.day}: {s.what} {s.wall.describe()}"
    if reading is None:
        return (
            f"{text} — add `clock_change: earlier` or `later` under `schedule:` "
            f"({s.wall.readings()}), or choose another time, before day {s.day} runs"
        )
    return f"{text}; clock_change: {reading} → {show(s.wall.pick(reading), s.wall.timezone)}"


def to_json(s: Shifted, reading: ClockChange | None) -> dict[str, object]:
    """One night for `warmup status --json` (instants in UTC)."""
    return {
        "day": s.day,
        "date": s.wall.local.date().isoformat(),
        "what": s.what,
        "local": s.wall.local.strftime("%H:%M"),
        "kind": s.wall.kind,
        "earlier": s.wall.earlier.astimezone(UTC).isoformat(),
        "later": s.wall.later.astimezone(UTC).isoformat(),
        "clock_change": reading,
        "at": None if reading is None else s.wall.pick(reading).astimezone(UTC).isoformat(),
    }
