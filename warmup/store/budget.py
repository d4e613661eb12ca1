"""A send rate shared by every process of a plan, kept in the database.

Each ``warmup worker`` asks the ``send_budget`` row for a send before each message: one
statement that grants it while fewer than ``rate`` sends were granted in the current second.
Why the database and not a leader process: the workers already share nothing but the store
(they may run on different hosts), a row update is atomic on both engines (PostgreSQL's row
lock, SQLite's one writer), and a leader would need its own election and channel, and would
stop every worker when it died. The cost is one round trip per message, small beside an SMTP
hand-over. Seconds are the workers' wall clocks (NTP keeps hosts within milliseconds).

A throttled answer in any worker slows every worker (``slow_down``): the row keeps the slowed
rate and when it was halved, and each grant computes in the same statement the pace recovered
since, by the rules of the single-process pacer (``Backoff``: warmup.email.pacing's numbers,
passed in by the dispatcher). Without it, a worker backing off only left its share to the
others, and the provider still saw the full rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from warmup.store.database import Store


@dataclass(frozen=True)
class Backoff:
    """How a throttled answer slows the shared pace: halved (once per ``same_burst`` seconds,
    not below ``floor`` of the full rate), then after ``quiet`` seconds climbing back by
    ``recovery`` of the full rate per second."""

    floor: float
    recovery: float
    quiet: float
    same_burst: float


class SendBudget:
    """At most ``rate`` sends per second under ``name``, across every process sharing the
    store (no limit when ``rate`` is None or 0)."""

    def __init__(
        self,
        store: Store,
        name: str,
        rate: float | None,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db, self.name = store.backend, name
        self.rate = int(rate) if rate else 0
        self.backoff = backoff
        self.clock, self.sleep = clock, sleep

    def _pace(self, now: float) -> tuple[str, tuple[float, ...]]:
        """SQL for the pace at ``now`` (the full rate unless a throttled answer slowed it) and
        its parameters."""
        if self.backoff is None:
            return "?", (float(self.rate),)
        full = float(self.rate)
        climbed = (
            "(CASE WHEN ? - send_budget.slowed_at > ? "
            "THEN send_budget.slowed_rate + (? - send_budget.slowed_at - ?) * ? "
            "ELSE send_budget.slowed_rate END)"
        )
        per_second = full * self.backoff.recovery
        climbed_args = (now, self.backoff.quiet, now, self.backoff.quiet, per_second)
        sql = (
            f"(CASE WHEN send_budget.slowed_rate IS NULL OR {climbed} >= ? THEN ? "
            f"ELSE {climbed} END)"
        )
        return sql, (*climbed_args, full, full, *climbed_args)

    def take(self) -> bool:
        """One send from the current second's budget, if there is one left."""
        now = self.clock()
        pace, args = self._pace(now)
        row = self.db.execute(
            "INSERT INTO send_budget (name, epoch_second, used) VALUES (?, ?, 1) "
            "ON CONFLICT (name) DO UPDATE SET "
            "used = CASE WHEN send_budget.epoch_second = excluded.epoch_second "
            "THEN send_budget.used + 1 ELSE 1 END, epoch_second = excluded.epoch_second "
            f"WHERE send_budget.epoch_second != excluded.epoch_second OR send_budget.used < {pace} "
            "RETURNING used",
            (self.name, int(now), *args),
        ).fetchone()
        return row is not None

    def slow_down(self) -> float | None:
        """A throttled answer: halve the shared pace, unless another worker already did within
        the same burst. Returns the new pace (messages per second), or None when unchanged."""
        if not self.rate or self.backoff is None:
            return None
        now = self.clock()
        pace, args = self._pace(now)
        least = self.rate * self.backoff.floor
        row = self.db.execute(
            "UPDATE send_budget SET "
            f"slowed_rate = CASE WHEN {pace} / 2 < ? THEN ? ELSE {pace} / 2 END, slowed_at = ? "
            "WHERE name = ? AND (slowed_at IS NULL OR ? - slowed_at >= ?) RETURNING slowed_rate",
            (*args, least, least, *args, now, self.name, now, self.backoff.same_burst),
        ).fetchone()
        return None if row is None else float(row[0])

    def wait(self) -> None:
        """Block until a send is granted."""
        if not self.rate:
            return
        while not self.take():
            now = self.clock()
            self.sleep(max(0.001, int(now) + 1 - now))
