"""Paced sending over a day's send window, as a warmed sender spreads its mail.

A plan's ``schedule.send_window`` (e.g. 10:00–16:00 in the plan's time zone) with a shape:
``even`` (the same rate all window long) or ``hourly_ramp`` (hour h of H carries h parts of
1 + 2 + … + H, so the rate climbs through the window, as SendGrid's automated warm-up and
MTAs' per-domain schedules raise volume hour by hour). Message k of the day's N is due at the
moment the shape's cumulative share reaches k / N.

A run that starts late (or resumes after a crash) does not burst to catch up: the messages not
yet sent are spread, in the same shape, over what is left of the window, so the rate rises by
the factor 1 / (1 − share already due) instead of jumping to "everything now". Past the end of
the window the rest goes at the window's average rate.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from warmup.plan import LoadedPlan
from warmup.plan.calendar import date_of_day, local_time
from warmup.store import Store, days
from warmup.store import events as stored_events

Shape = Literal["even", "hourly_ramp"]
# The clock the dispatcher's window pacer sleeps on (tests make time pass instantly).
_sleep: Callable[[float], None] = time.sleep
_monotonic: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class SendWindow:
    start: datetime
    end: datetime
    shape: Shape = "even"

    def breakpoints(self) -> list[tuple[datetime, float]]:
        """(moment, cumulative share) pairs; the share is linear between them."""
        if self.shape == "even":
            return [(self.start, 0.0), (self.end, 1.0)]
        points: list[tuple[datetime, float]] = [(self.start, 0.0)]
        weights: list[tuple[datetime, float]] = []
        moment, hour = self.start, 1
        while moment < self.end:
            following = min(self.end, moment + timedelta(hours=1))
            part = (following - moment) / timedelta(hours=1)
            weights.append((following, hour * part))
            moment, hour = following, hour + 1
        total = sum(w for _, w in weights)
        done = 0.0
        for moment, weight in weights:
            done += weight
            points.append((moment, done / total))
        return points

    def share_at(self, moment: datetime) -> float:
        points = self.breakpoints()
        if moment <= points[0][0]:
            return 0.0
        for (t0, f0), (t1, f1) in itertools.pairwise(points):
            if moment <= t1:
                return f0 + (f1 - f0) * ((moment - t0) / (t1 - t0))
        return 1.0

    def moment_at(self, share: float) -> datetime:
        points = self.breakpoints()
        for (t0, f0), (t1, f1) in itertools.pairwise(points):
            if share <= f1:
                return t0 + (t1 - t0) * ((share - f0) / (f1 - f0) if f1 > f0 else 0.0)
        return points[-1][0]


def schedule_slot(
    window: SendWindow, total: int, done: int, index: int, begun: datetime
) -> datetime:
    """When message ``index`` (0-based, counting the ``done`` already sent) may go, for a run
    that began at ``begun``; see the module docstring."""
    total = max(total, index + 1)
    planned = window.moment_at(index / total)
    if begun <= window.start:
        return planned
    if begun >= window.end:
        average = (window.end - window.start) / total
        return begun + average * (index - done)
    # Late: what is left goes over the rest of the window, in the window's shape.
    due_share = window.share_at(begun)
    remaining = max(1, total - done)
    share = due_share + (1 - due_share) * ((index - done) / remaining)
    return max(begun, window.moment_at(share))


class WindowPacer:
    """Hands out the day's send slots to the drain's workers, in order."""

    def __init__(
        self,
        window: SendWindow,
        total: int,
        done: int,
        now: datetime,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window, self.total, self.done = window, total, done
        self.begun = now
        self._sleep, self._monotonic = sleep, monotonic
        self._anchor = monotonic()
        self._next = done
        self._lock = threading.Lock()

    def now(self) -> datetime:
        # The rehearsal clock (--now) stands still; real time moves it on.
        return self.begun + timedelta(seconds=self._monotonic() - self._anchor)

    def wait(self) -> datetime:
        with self._lock:
            index, self._next = self._next, self._next + 1
        slot = schedule_slot(self.window, self.total, self.done, index, self.begun)
        delay = (slot - self.now()).total_seconds()
        if delay > 0:
            self._sleep(delay)
        return slot


def window_pacer(loaded: LoadedPlan, store: Store, day: int, now: datetime) -> WindowPacer | None:
    """The pacer for ``day`` of a plan with a ``schedule.send_window``; None without one.
    The day's total counts every email row not cancelled; ``done`` those already handed over."""
    settings = loaded.plan.schedule.send_window
    if settings is None or day > loaded.plan.day_count:
        return None
    when = date_of_day(loaded.plan, day, days.states(store.backend))
    window = SendWindow(
        local_time(loaded.plan, when, settings.start),
        local_time(loaded.plan, when, settings.end),
        settings.shape,
    )
    total, done = stored_events.email_progress(store.backend, day)
    return WindowPacer(window, total, done, now, _sleep, _monotonic)
