"""A thread-safe pacer: at most ``rate`` messages per second across all connections, slowed
when the provider throttles (halved, then recovering gradually to the full rate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# A throttled answer halves the pace, not below this share of the full rate; after QUIET
# seconds the pace climbs back by RECOVERY of the full rate per second (half to full in 5 s).
FLOOR = 1 / 32
RECOVERY = 0.1
QUIET_SECONDS = 2.0
# Throttled answers this close after a halving are the same burst (requests already in flight
# when the pace was cut): they do not halve it again. SES counts its rate per second.
SAME_BURST_SECONDS = 1.0


class Pacer:
    """Hands out evenly spaced send slots (no bursts: a relay's per-second cap holds for every
    one-second window, including the first after an idle spell)."""

    def __init__(self, rate: float | None, *, clock: Callable[[], float] | None = None) -> None:
        self._full = float(rate) if rate else 0.0
        self._rate = self._full
        # looked up at each call, not bound here (tests replace time.monotonic)
        self._clock = clock or (lambda: time.monotonic())
        self._next = self._clock()
        self._changed = self._next
        self._halved_at: float | None = None
        self._lock = threading.Lock()
        # the slowest pace the throttling brought it to (None: never slowed)
        self.slowest: float | None = None

    @property
    def rate(self) -> float:
        """The pace now, in messages per second (0: unpaced)."""
        with self._lock:
            return self._recovered(self._clock())

    def wait(self) -> None:
        if not self._full:
            return
        with self._lock:
            now = self._clock()
            slot = max(self._next, now)
            self._next = slot + 1.0 / self._recovered(now)
        if slot > now:
            time.sleep(slot - now)

    def slow_down(self) -> bool:
        """A throttled answer: halve the pace (once per burst). True when it was halved."""
        if not self._full:
            return False
        with self._lock:
            now = self._clock()
            if self._halved_at is not None and now - self._halved_at < SAME_BURST_SECONDS:
                return False
            self._rate = max(self._full * FLOOR, self._recovered(now) / 2)
            self._halved_at = now
            # a provider still throttling within the quiet spell halves it again
            self._changed = now + QUIET_SECONDS
            self.slowest = self._rate if self.slowest is None else min(self.slowest, self._rate)
            return True

    def _recovered(self, now: float) -> float:
        if self._rate < self._full and now > self._changed:
            self._rate = min(self._full, self._rate + self._full * RECOVERY * (now - self._changed))
        self._changed = max(self._changed, now)
        return self._rate
