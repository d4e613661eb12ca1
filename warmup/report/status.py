"""`warmup status`: one table of the plan's days, what is outstanding, and the next thing to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from warmup.clock import ClockChange, local_today, show
from warmup.errors import InvalidInput
from warmup.events import unsubscribe_backlog
from warmup.guardrails import DayFigures, evaluate_guardrails
from warmup.mailboxes.status import coming_holds, group_rows, render_group_table
from warmup.plan.calendar import local_time
from warmup.plan.loader import LoadedPlan
from warmup.report.comparison import comparison, render_lines
from warmup.report.figures import NOT_RUN, DayRow, day_rows
from warmup.store import Store, journeys, open_store
from warmup.store.outbox import (
    BOUNCED,
    FAILED,
    ON_HOLD,
    PENDING,
    SENDING,
    SENT,
    UNCERTAIN,
    Outbox,
)
from warmup.wallclock import Shifted, say, shifted_times
from warmup.wallclock import to_json as wall_json

JSON_VERSION = 1


@dataclass
class Guardrail:
    """The guardrails' decision for the next day: proceed | hold | rollback."""

    action: str
    day: int
    reasons: list[str]
    # mailbox groups held on that day (warmup.mailboxes): "mailbox group G held at N: why"
    groups_held: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "day": self.day, "reasons": self.reasons} | (
            {"groups_held": self.groups_held} if self.groups_held else {}
        )


@dataclass
class PlanStatus:
    plan: str
    timezone: str
    store: str
    days: list[DayRow]
    email_backlog: dict[str, Any]
    list_sync_backlog: dict[str, Any]
    unsubscribes_waiting: int
    oldest_unsubscribe_seconds: int | None
    guardrail: Guardrail
    next_action: str
    # Days not completed whose local times the clocks skip or repeat on the dates they now take.
    clock_nights: list[Shifted]
    clock_change: ClockChange | None
    # each day's mailbox provider groups (warmup.mailboxes.status); empty without groups
    mailbox_groups: list[dict[str, Any]] = field(default_factory=list)
    # per provider and engagement tier (warmup.report.comparison); empty unless the plan
    # pulls Klaviyo's engagement
    comparison: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "version": JSON_VERSION,
                "plan": self.plan,
                "timezone": self.timezone,
                "store": self.store,
                "days": [d.to_json() for d in self.days],
                "email_backlog": self.email_backlog,
                "list_sync_backlog": self.list_sync_backlog,
                "unsubscribes_waiting": self.unsubscribes_waiting,
                "oldest_unsubscribe_seconds": self.oldest_unsubscribe_seconds,
                "guardrail": self.guardrail.to_json(),
                "next": self.next_action,
                "clock_changes": [wall_json(s, self.clock_change) for s in self.clock_nights],
            }
            | ({"mailbox_groups": self.mailbox_groups} if self.mailbox_groups else {})
            | ({"comparison": self.comparison} if self.comparison else {})
        )


def _next_day(days: list[DayRow]) -> int:
    """The day the guardrails decide for: the first not completed (one past the end when all
    are, which judges the last days' figures)."""
    open_days = [d.day for d in days if d.status != "completed"]
    return open_days[0] if open_days else days[-1].day + 1


def guardrail_state(loaded: LoadedPlan, store: Store, days: list[DayRow]) -> Guardrail:
    day = _next_day(days)
    decision = evaluate_guardrails(loaded, store, day)
    held = coming_holds(loaded, store.backend, day) if day <= len(days) else []
    return Guardrail(decision.action, day, list(decision.reasons), held)


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _shown_status(day: DayRow) -> str:
    """The engine completes a day once its outbox is written; until its email is out the
    table says so, rather than "completed" over a row of nothing sent."""
    if day.status == "completed" and (day.emails.pending or day.list_sync.failed):
        return "sending"
    return day.status


def open_nights(loaded: LoadedPlan, days: list[DayRow]) -> list[Shifted]:
    """Clock-change nights on the dates the days not completed take now (a late day pushes
    the rest onto nights `warmup validate`, which checks the planned dates, never saw)."""
    return shifted_times(
        loaded, {d.day: date.fromisoformat(d.date) for d in days if d.status != "completed"}
    )


def _mails_at(loaded: LoadedPlan, day: DayRow) -> str:
    """The day's send time with its offset, so a repeated hour says which one."""
    plan = loaded.plan
    try:
        moment = local_time(plan, date.fromisoformat(day.date), day.send_time)
    except InvalidInput:  # unresolved: open_nights says so
        return day.send_time
    return show(moment, plan.timezone, with_zone=False)[11:]


def _spread(loaded: LoadedPlan) -> str:
    """The send window the day's mail is paced over, if the plan has one."""
    window = loaded.plan.schedule.send_window
    if window is None:
        return ""
    return f", spread over {window.start}–{window.end} ({window.shape})"


def next_action(
    loaded: LoadedPlan,
    store: Store,
    days: list[DayRow],
    guardrail: Guardrail,
    now: datetime,
    nights: list[Shifted] | None = None,
) -> str:
    """The one thing an operator should do next, in words."""
    plan = loaded.plan
    tz = plan.timezone
    plan_arg = str(loaded.path)
    uncertain = sum(d.emails.uncertain for d in days)
    if uncertain:
        return (
            f"{uncertain} email(s) are uncertain (the connection died mid-send): check the "
            "relay's log, then resend or drop them"
        )
    if guardrail.action == "rollback":
        return (
            f"guardrails stop day {guardrail.day}: find the cause, then warmup run "
            f'{plan_arg} --day {guardrail.day} --override-guardrail "what you fixed"'
        )
    failed_lists = [d for d in days if d.list_sync.failed]
    if failed_lists:
        # running the day again would fail the same way: the list changes go first
        day = failed_lists[0]
        return (
            f"day {day.day} has {day.list_sync.failed:,} Klaviyo list change(s) that failed: "
            f"fix the cause, then warmup sync {plan_arg} --day {day.day} (a list deleted in "
            f"Klaviyo: add --resolve-lists), then warmup run {plan_arg} --day {day.day} to "
            "send the email waiting for them"
        )
    unsent = Outbox(store).unsent_email()
    stranded = [d for d in days if d.status == "completed" and d.day in unsent]
    if stranded:
        day = stranded[0]
        return (
            f"day {day.day} has {unsent[day.day]:,} email(s) not sent yet: "
            f"warmup run {plan_arg} --day {day.day}"
        )
    open_days = [d for d in days if d.status in ("running", "waiting", "failed")]
    if open_days:
        day = open_days[0]
        due = journeys.next_due(store.backend, day.day, now.astimezone(UTC).isoformat())
        if due:
            return (
                f"day {day.day} can continue after {show(due, tz)}: "
                f"warmup run {plan_arg} --day {day.day}"
            )
        if day.status == "running" and store.lock_holder("run") is None:
            return (
                f"day {day.day}'s last run was interrupted; run it again to finish the day "
                f"(nothing is sent twice): warmup run {plan_arg} --day {day.day}"
            )
        if day.status == "failed":
            return (
                f"day {day.day}'s last run failed (its error was printed then); fix the cause "
                f"and run it again: warmup run {plan_arg} --day {day.day}"
            )
        return f"day {day.day} is {day.status}: warmup run {plan_arg} --day {day.day}"
    remaining = [d for d in days if d.status in NOT_RUN]
    if not remaining:
        return f"all {len(days)} days completed"
    day = remaining[0]
    if plan.schedule.clock_change is None:
        for night in nights or []:
            if night.day == day.day:
                # The `clock` lines (and `clock_changes`) give both instants.
                return (
                    f"day {day.day}: {night.what} {night.wall.describe()} — add `clock_change: "
                    "earlier` or `later` under `schedule:`, or choose another time; until then "
                    f"`warmup run {plan_arg} --day {day.day}` refuses it"
                )
    starts = local_time(plan, date.fromisoformat(day.date))
    if now < starts:
        return (
            f"day {day.day} can run after {show(starts, tz)} "
            f"(mails at {_mails_at(loaded, day)}{_spread(loaded)}): "
            f"warmup run {plan_arg} --day {day.day}"
        )
    if day.status == "late":
        # Its whole date has passed: the run will say which dates the later days now take.
        return (
            f"day {day.day} is late (planned for {day.date}; its send time has passed, so it "
            f"mails at once and the later days move along): warmup run {plan_arg} --day {day.day}"
        )
    return (
        f"day {day.day} is due (mails at {_mails_at(loaded, day)} {tz}{_spread(loaded)}): "
        f"warmup run {plan_arg} --day {day.day}"
    )


def plan_status(loaded: LoadedPlan, *, now: datetime | None = None) -> PlanStatus:
    """Everything `warmup status` shows, read from the plan's store."""
    now = now or datetime.now(UTC)
    store = open_store(loaded.store_path, create=False)
    try:
        days = day_rows(loaded, store, local_today(loaded.plan.timezone, now))
        nights = open_nights(loaded, days)
        guardrail = guardrail_state(loaded, store, days)
        waiting = unsubscribe_backlog(store, now=now)
        outbox = Outbox(store)
        return PlanStatus(
            plan=loaded.plan.name,
            timezone=loaded.plan.timezone,
            store=store.location,
            days=days,
            email_backlog=outbox.email_backlog(),
            list_sync_backlog=outbox.list_change_backlog(),
            unsubscribes_waiting=waiting.count,
            oldest_unsubscribe_seconds=(
                None if waiting.oldest_age is None else int(waiting.oldest_age.total_seconds())
            ),
            guardrail=guardrail,
            next_action=next_action(loaded, store, days, guardrail, now, nights),
            clock_nights=nights,
            clock_change=loaded.plan.schedule.clock_change,
            mailbox_groups=group_rows(store.backend),
            comparison=comparison(loaded, store.backend),
        )
    finally:
        store.close()


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(figures: DayFigures | None, name: str) -> str:
    if figures is None or not figures.sent:
        return "-"
    return f"{getattr(figures, name):.2%}"


def render_table(status: PlanStatus) -> str:
    """The status as fixed-width text."""
    head = (
        "day",
        "date",
        "status",
        "new plan",
        "new alloc",
        "new sent",
        "klaviyo",
        "pending",
        "failed",
        "uncert",
        "lists",
        "bounce",
        "complaint",
        "unsub",
    )
    rows = [head]
    for d in status.days:
        plan_text = (
            d.new_setting
            if d.new_limit is None or d.new_setting == str(d.new_limit)
            else f"{d.new_setting}={d.new_limit:,}"
        )
        rows.append(
            (
                str(d.day),
                d.date,
                _shown_status(d),
                plan_text,
                _cell(d.new_allocated),
                _cell(d.new_sent) if d.status not in NOT_RUN else "-",
                _cell(d.klaviyo_allocated),
                _cell(d.emails.pending),
                _cell(d.emails.failed),
                _cell(d.emails.uncertain),
                _cell(d.list_sync.pending + d.list_sync.failed),
                _rate(d.mail, "hard_bounce_rate"),
                _rate(d.mail, "complaint_rate"),
                _rate(d.mail, "unsubscribe_rate"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    left = {1, 2}
    lines = [f"plan {status.plan} ({status.timezone}) — store {status.store}"]
    for r in rows:
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lists = status.list_sync_backlog
    mail = status.email_backlog
    rail = status.guardrail
    lines += [
        "",
        f"emails      {mail[SENT]:,} sent, {mail[PENDING] + mail[SENDING]:,} pending, "
        f"{mail[FAILED] + mail[BOUNCED]:,} failed or bounced, "
        f"{mail[UNCERTAIN]:,} uncertain",
        f"list sync   {lists[SENT]:,} synced, {lists[PENDING] + lists[SENDING]:,} "
        f"pending, {lists[FAILED]:,} failed, {lists[ON_HOLD]:,} on hold",
        *(
            f"  held: {n:,} × {reason}"
            for reason, n in list(lists.get("held_by_reason", {}).items())[:10]
        ),
        f"unsubscribes waiting for Klaviyo: {status.unsubscribes_waiting:,}"
        + (
            ""
            if status.oldest_unsubscribe_seconds is None
            else f" (oldest {_age(status.oldest_unsubscribe_seconds)} ago)"
        ),
        *render_group_table(status.mailbox_groups)[1:],
        *render_lines(status.comparison),
        f"guardrail   {rail.action} "
        + (f"for day {rail.day}" if rail.day <= len(status.days) else "after the last day")
        + "".join(f"\n              {reason}" for reason in [*rail.reasons, *rail.groups_held]),
    ]
    lines += [
        f"{'clock' if i == 0 else '':<12}{say(night, status.clock_change)}"
        for i, night in enumerate(status.clock_nights)
    ]
    lines.append(f"next        {status.next_action}")
    return "\n".join(lines)
