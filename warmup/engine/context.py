"""The one context object every phase and node of a day's run reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from warmup.plan import LoadedPlan
from warmup.plan.models import DaySettings, Plan
from warmup.store.backends import Backend


@dataclass
class DayContext:
    loaded: LoadedPlan
    # The store's backend: the engine's SQL (engine/sql.py) runs on SQLite and PostgreSQL.
    conn: Backend
    day: int
    date: date
    start: datetime  # midnight of the day's date, plan time zone
    # The clock; None evaluates the whole day as if every wait were due (the dry run).
    now: datetime | None
    dry_run: bool
    # The schedule day whose new-provider volume applies (a guardrail hold or rollback).
    volume_day: int | None = None

    @property
    def plan(self) -> Plan:
        return self.loaded.plan

    @property
    def settings(self) -> DaySettings:
        return self.plan.schedule.day(self.volume_day or self.day)

    @property
    def template(self) -> str | None:
        return self.plan.schedule.template_for(self.day)

    def reached(self, moment: datetime) -> bool:
        return self.now is None or moment <= self.now

    def key_prefix(self, node_id: str) -> str:
        """Outbox idempotency key of (plan, day, node, customer) without the customer id."""
        return f"{self.plan.name}:{self.day}:{node_id}:"
