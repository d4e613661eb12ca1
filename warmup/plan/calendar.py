"""Sending-day dates: which calendar date a plan's Nth sending day falls on.

Day 1 is the first sending date on or after ``start_date``. Every later day is the next sending
date after the day before it — skipped weekdays and dates (holidays) are stepped over, and a day
that was held back (it finished on a later date than planned: a guardrail hold, a pause) pushes
the days after it along, so the ramp never jumps because the calendar did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from warmup import clock
from warmup.errors import InvalidInput
from warmup.plan.models import WEEKDAYS, Plan


def require_day(plan: Plan, day: int) -> None:
    """Refuse (exit 2) a day the plan does not have, before anything is read or sent."""
    if not 1 <= day <= plan.day_count:
        raise InvalidInput(
            f"day {day} is not in plan {plan.name}: it has days 1–{plan.day_count}",
            hint="pass --day between those",
        )


def is_sending_date(plan: Plan, when: date) -> bool:
    schedule = plan.schedule
    return (
        WEEKDAYS[when.weekday()] not in schedule.skip_weekdays and when not in schedule.skip_dates
    )


def next_sending_date(plan: Plan, on_or_after: date) -> date:
    """The first sending date on or after ``on_or_after``."""
    when = on_or_after
    # Skip lists are finite, so at most a week plus the skipped dates is ever stepped over.
    for _ in range(len(plan.schedule.skip_dates) + 8):
        if is_sending_date(plan, when):
            return when
        when += timedelta(days=1)
    raise ValueError("every weekday is skipped")  # the plan validator forbids this


def day_date(plan: Plan, day: int, history: Mapping[int, date] | None = None) -> date:
    """The date of sending day ``day``.

    ``history`` maps days already run to the last local date they occupied (their planned date,
    or the date they completed when that was later); the nearest earlier entry anchors the count.
    """
    history = history or {}
    anchors = [d for d in history if d < day]
    if anchors:
        anchor = max(anchors)
        when, steps = history[anchor], day - anchor
    else:
        when, steps = next_sending_date(plan, plan.start_date), day - 1
    for _ in range(steps):
        when = next_sending_date(plan, when + timedelta(days=1))
    return when


def occupied_until(plan: Plan, planned: date, completed_at: str | None) -> date:
    """The last local date a day that has run occupied: its date, or the date it completed
    when that was later (a held-back day) — what ``day_date``'s ``history`` holds."""
    if not completed_at:
        return planned
    return max(planned, local_date(plan, datetime.fromisoformat(completed_at)))


class RanDay(Protocol):
    """What a recorded day tells the calendar (``warmup.store.days.DayState`` is one)."""

    @property
    def date(self) -> str: ...
    @property
    def completed_at(self) -> str | None: ...


def date_of_day(plan: Plan, day: int, ran: Mapping[int, RanDay]) -> date:
    """The date day ``day`` ran on, else the date the calendar gives it after the days that
    have run (each occupying its date, or the date it completed when later): the one answer
    for every part that dates a day — the engine, the list window, the send window, events."""
    if day in ran:
        return date.fromisoformat(ran[day].date)
    history = {
        number: occupied_until(plan, date.fromisoformat(state.date), state.completed_at)
        for number, state in ran.items()
        if number < day
    }
    return day_date(plan, day, history)


def dates_after(plan: Plan, day: int, history: Mapping[int, date], on: date) -> dict[int, date]:
    """The dates of the days after ``day`` once ``day`` has run on ``on`` (a late day pushes
    them; `warmup run`'s late note and `warmup status` both say these)."""
    moved = {**history, day: on}
    return {n: day_date(plan, n, moved) for n in range(day + 1, plan.day_count + 1)}


def local_time(plan: Plan, when: date, hhmm: str | None = None) -> datetime:
    """``hhmm`` on date ``when`` in the plan's time zone as an aware datetime; without ``hhmm``
    the start of that day. A time the clocks skip or repeat that night is read as the plan's
    ``schedule.clock_change`` says, and refused (InvalidInput) when it says nothing."""
    if hhmm is None:
        return clock.day_start(plan.timezone, when)
    return clock.resolve(plan.timezone, when, hhmm, plan.schedule.clock_change)


def local_date(plan: Plan, moment: datetime) -> date:
    if moment.tzinfo is None:  # the store's times are UTC; never let the machine's zone in
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(clock.zone(plan.timezone)).date()


def parse_moment(text: str, timezone: str) -> datetime:
    """``--now`` for rehearsals (warmup.clock.parse_moment)."""
    return clock.parse_moment(text, timezone)
