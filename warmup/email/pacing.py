"""A thread-safe pacer: at most ``rate`` messages per second across all connections."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Hands out evenly spaced send slots (no bursts: a relay's per-second cap holds for every
    one-second window, including the first after an idle spell)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)
