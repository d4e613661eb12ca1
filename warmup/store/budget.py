"""A send rate shared by every process of a plan, kept in the database.

Each ``warmup worker`` asks the ``send_budget`` row for a send before each message: one
statement that grants it while fewer than ``rate`` sends were granted in the current second.
Why the database and not a leader process: the workers already share nothing but the store
(they may run on different hosts), a row update is atomic on both engines (PostgreSQL's row
lock, SQLite's one writer), and a leader would need its own election and channel, and would
stop every worker when it died. The cost is one round trip per message, small beside an SMTP
hand-over. Seconds are the workers' wall clocks (NTP keeps hosts within milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from warmup.store.database import Store


class SendBudget:
    """At most ``rate`` sends per second under ``name``, across every process sharing the
    store (no limit when ``rate`` is None or 0)."""

    def __init__(
        self,
        store: Store,
        name: str,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db, self.name = store.backend, name
        self.rate = int(rate) if rate else 0
        self.clock, self.sleep = clock, sleep

    def take(self) -> bool:
        """One send from the current second's budget, if there is one left."""
        row = self.db.execute(
            "INSERT INTO send_budget (name, epoch_second, used) VALUES (?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET "
            "used = CASE WHEN send_budget.epoch_second = excluded.epoch_second "
            "THEN send_budget.used + 1 ELSE 1 END, epoch_second = excluded.epoch_second "
            "WHERE send_budget.epoch_second != excluded.epoch_second OR send_budget.used < ? "
            "RETURNING used",
            (self.name, int(self.clock()), self.rate),
        ).fetchone()
        return row is not None

    def wait(self) -> None:
        """Block until a send is granted."""
        if not self.rate:
            return
        while not self.take():
            now = self.clock()
            self.sleep(max(0.001, int(now) + 1 - now))
