"""Client-side rate limiting that keeps under Klaviyo's fixed windows without learning from 429s.

Klaviyo counts requests in fixed windows (1 s burst, 1 min steady) by the time *it* sees them,
which lies somewhere between our send and our receipt of the reply. So a request may start only
when fewer than ``limit`` earlier requests are still in flight or finished less than one window
ago. Proof sketch: if limit+1 requests fell in one server window, the last one sent would have
seen ``limit`` others either in flight or finished within a window before it started — the
rule forbids exactly that. One limiter per endpoint, shared by every worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from warmup.providers.klaviyo.endpoints import Tier

Clock = Callable[[], float]


class Ticket:
    __slots__ = ("finished",)

    def __init__(self) -> None:
        self.finished: float | None = None


class RateLimiter:
    """Burst and steady windows of one endpoint. ``acquire()`` blocks until a request may start."""

    def __init__(
        self,
        tier: Tier,
        *,
        scale: float = 1.0,
        time_scale: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        # ``scale`` is this client's share of the counts; ``time_scale`` shortens the windows
        # (a ``--fast`` sandbox keeps Klaviyo's counts and runs its clock that much faster).
        self.limits = [
            (max(1, int(tier.burst * scale)), 1.0 / time_scale),
            (max(1, int(tier.steady * scale)), 60.0 / time_scale),
        ]
        if tier.daily is not None:
            self.limits.append((max(1, int(tier.daily * scale)), 86400.0 / time_scale))
        self.clock = clock
        self.tickets: deque[Ticket] = deque()
        self.cond = threading.Condition()
        self.waited = 0.0

    def _wait_needed(self, now: float) -> float | None:
        """Seconds until a slot frees (0 = now); None = wait for a request in flight."""
        horizon = max(window for _, window in self.limits)
        while (
            self.tickets
            and self.tickets[0].finished is not None
            and (self.tickets[0].finished <= now - horizon)
        ):
            self.tickets.popleft()
        needed = 0.0
        for limit, window in self.limits:
            busy_in_flight = 0
            finished: list[float] = []
            for ticket in self.tickets:
                if ticket.finished is None:
                    busy_in_flight += 1
                elif ticket.finished > now - window:
                    finished.append(ticket.finished)
            excess = busy_in_flight + len(finished) - limit + 1
            if excess <= 0:
                continue
            if excess > len(finished):
                return None
            finished.sort()
            needed = max(needed, finished[excess - 1] + window - now)
        return needed

    def acquire(self) -> Ticket:
        with self.cond:
            while True:
                now = self.clock()
                wait = self._wait_needed(now)
                if wait is not None and wait <= 0:
                    ticket = Ticket()
                    self.tickets.append(ticket)
                    return ticket
                started = self.clock()
                self.cond.wait(timeout=wait if wait is not None else 1.0)
                self.waited += self.clock() - started

    def release(self, ticket: Ticket) -> None:
        with self.cond:
            ticket.finished = self.clock()
            self.cond.notify_all()

    def idle(self) -> None:
        """Block until every window is empty (benchmarks start each step from a clean slate)."""
        with self.cond:
            horizon = max(window for _, window in self.limits[:2])
            while any(
                t.finished is None or t.finished > self.clock() - horizon for t in self.tickets
            ):
                self.cond.wait(timeout=0.5)
