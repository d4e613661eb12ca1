"""Per-day rows read from the store: what was planned, what happened, what is outstanding.

The store is the single source of truth: every view (status table, JSON, HTML report) is built
from these read-only queries, never from state kept by a command. Bounce, complaint and
unsubscribe figures are the guardrails' own (:func:`warmup.guardrails.day_figures`), so the
report shows exactly what the ramp decisions are made from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from warmup.guardrails import DayFigures, day_figures
from warmup.plan.calendar import day_date, occupied_until
from warmup.plan.loader import LoadedPlan
from warmup.store import Store, days
from warmup.store import events as stored_events
from warmup.store.outbox import BOUNCED, FAILED, ON_HOLD, PENDING, SENDING, UNCERTAIN

# A day's status before it has run: `late` is a planned day whose date has passed (status only).
NOT_RUN = ("planned", "late")

# Outbox statuses (the store's own constants) grouped the way an operator reads them.
PENDING_GROUP = (PENDING, SENDING)
FAILED_GROUP = (FAILED, BOUNCED, ON_HOLD)
UNCERTAIN_GROUP = (UNCERTAIN,)


@dataclass
class Outstanding:
    pending: int = 0
    failed: int = 0
    uncertain: int = 0
    sent: int = 0

    def add(self, status: str, count: int) -> None:
        if status in PENDING_GROUP:
            self.pending += count
        elif status in FAILED_GROUP:
            self.failed += count
        elif status in UNCERTAIN_GROUP:
            self.uncertain += count
        elif status == "sent":
            self.sent += count


@dataclass
class DayRow:
    day: int
    date: str
    status: str  # planned | late | running | waiting | completed | failed
    template: str | None
    send_time: str
    new_setting: str  # the plan's `new:` (50, "10%", all)
    new_limit: int | None  # resolved when the day ran
    # For a day not run yet: its limit over the latest run day's eligible audience, so that
    # "10%" or "all" shows on the ramp before the day resolves it.
    new_estimate: int | None
    new_allocated: int | None
    klaviyo_allocated: int | None
    emails: Outstanding = field(default_factory=Outstanding)
    list_sync: Outstanding = field(default_factory=Outstanding)
    mail: DayFigures | None = None

    @property
    def new_sent(self) -> int:
        return self.mail.sent if self.mail else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "date": self.date,
            "status": self.status,
            "template": self.template,
            "send_time": self.send_time,
            "new_setting": self.new_setting,
            "new_limit": self.new_limit,
            "new_estimate": self.new_estimate,
            "new_allocated": self.new_allocated,
            "klaviyo_allocated": self.klaviyo_allocated,
            "new_sent": self.new_sent,
            "emails": vars(self.emails),
            "list_sync": vars(self.list_sync),
            "figures": self.mail.to_json() if self.mail else None,
        }


def _history(
    loaded: LoadedPlan, rows: dict[int, dict[str, Any]], today: date | None
) -> dict[int, date]:
    """Days already run → the last local date they occupied (for the sending-day calendar); as
    of ``today``, a day not completed yet occupies today at least."""
    history: dict[int, date] = {}
    for number, row in rows.items():
        when = occupied_until(loaded.plan, date.fromisoformat(row["date"]), row["completed_at"])
        if not row["completed_at"] and today is not None:
            when = max(when, today)
        history[number] = when
    return history


def day_rows(loaded: LoadedPlan, store: Store, today: date | None = None) -> list[DayRow]:
    """One row per day of the plan's schedule (days not run yet are ``planned``).

    With ``today`` (the plan zone's date) the calendar is the one the days will take from
    today: a day not run whose date has passed is ``late`` (run now, it mails at once) and the
    days after it take the dates `warmup run`'s late note lists."""
    rows = {int(r["day"]): r for r in days.named_rows(store.backend)}
    outbox = stored_events.outbox_counts(store.backend)
    mail = {f.day: f for f in day_figures(store)}
    plan = loaded.plan
    history = _history(loaded, rows, today)
    latest = max(
        (r for r in rows.values() if r["new_allocated"] is not None),
        key=lambda r: int(r["day"]),
        default=None,
    )
    eligible = (
        None
        if latest is None
        else int(latest["new_allocated"]) + int(latest["klaviyo_allocated"] or 0)
    )
    result: list[DayRow] = []
    for setting in plan.schedule.days:
        number = setting.day
        row = rows.get(number)
        when = row["date"] if row is not None else day_date(plan, number, history).isoformat()
        status = str(row["status"]) if row is not None else "planned"
        if status == "planned" and today is not None and date.fromisoformat(when) < today:
            status = "late"
            history[number] = today  # it runs today at the earliest: the rest follow
        day = DayRow(
            day=number,
            date=when,
            status=status,
            template=plan.schedule.template_for(number),
            send_time=plan.schedule.send_time_for(number),
            new_setting=str(setting.new),
            new_limit=row["new_limit"] if row is not None else None,
            new_estimate=(
                setting.limit_for(eligible) if row is None and eligible is not None else None
            ),
            new_allocated=row["new_allocated"] if row is not None else None,
            klaviyo_allocated=row["klaviyo_allocated"] if row is not None else None,
            mail=mail.get(number),
        )
        for d, kind, status, count in outbox:
            if d == number:
                (day.emails if kind == "email" else day.list_sync).add(status, count)
        result.append(day)
    return result
