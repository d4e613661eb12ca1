"""`warmup status`: one table of the plan's days, what is outstanding, and the next thing to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from warmup.calendar import local_time
from warmup.plan.loader import LoadedPlan
from warmup.plan.models import Plan
from warmup.report.figures import DayFigures, Outstanding, day_figures, unsubscribes_waiting
from warmup.store import Store, open_store

JSON_VERSION = 1


@dataclass
class Guardrail:
    """The ramp's health from the latest day with mail sent: ok | hold | rollback |
    too_few (below ``min_sample``) | no_data."""

    state: str
    day: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "day": self.day, "reason": self.reason}


@dataclass
class PlanStatus:
    plan: str
    timezone: str
    store: str
    days: list[DayFigures]
    email_backlog: Outstanding
    list_sync_backlog: Outstanding
    unsubscribes_waiting: int
    guardrail: Guardrail
    next_action: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "plan": self.plan,
            "timezone": self.timezone,
            "store": self.store,
            "days": [d.to_json() for d in self.days],
            "email_backlog": vars(self.email_backlog),
            "list_sync_backlog": vars(self.list_sync_backlog),
            "unsubscribes_waiting": self.unsubscribes_waiting,
            "guardrail": self.guardrail.to_json(),
            "next": self.next_action,
        }


def guardrail_state(plan: Plan, days: list[DayFigures]) -> Guardrail:
    """Judge the latest day that mailed against the plan's hold and rollback thresholds."""
    mailed = [d for d in days if d.new_sent]
    if not mailed:
        return Guardrail("no_data")
    last = mailed[-1]
    rails = plan.guardrails
    if last.new_sent < rails.min_sample:
        return Guardrail("too_few", last.day, f"{last.new_sent} sent, fewer than min_sample "
                         f"{rails.min_sample}: rates not judged yet")
    bounce = last.hard_bounces / last.new_sent
    complaint = last.complaints / last.new_sent
    if bounce >= rails.rollback.hard_bounce_rate or complaint >= rails.rollback.complaint_rate:
        return Guardrail("rollback", last.day, f"hard bounces {bounce:.2%}, complaints "
                         f"{complaint:.3%} at or over the rollback line")
    delivered = last.delivered / last.new_sent if last.delivered else None
    if (bounce >= rails.hold.hard_bounce_rate or complaint >= rails.hold.complaint_rate
            or (delivered is not None and delivered < rails.hold.delivered_rate_below)):
        return Guardrail("hold", last.day, f"hard bounces {bounce:.2%}, complaints "
                         f"{complaint:.3%} at or over the hold line")
    return Guardrail("ok", last.day, f"hard bounces {bounce:.2%}, complaints {complaint:.3%}")


def _local(plan: Plan, iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    return local_time(plan, moment.date()).tz.convert(moment).strftime("%Y-%m-%d %H:%M")


def next_action(loaded: LoadedPlan, store: Store, days: list[DayFigures],
                guardrail: Guardrail, now: datetime) -> str:
    """The one thing an operator should do next, in words."""
    plan = loaded.plan
    tz = plan.timezone
    plan_arg = str(loaded.path)
    uncertain = sum(d.emails.uncertain for d in days)
    if uncertain:
        return (f"{uncertain} email(s) are uncertain (the connection died mid-send): check the "
                "relay's log, then resend or drop them")
    if guardrail.state in ("hold", "rollback"):
        return f"guardrail {guardrail.state} after day {guardrail.day}: {guardrail.reason}"
    open_days = [d for d in days if d.status in ("running", "waiting", "failed")]
    if open_days:
        day = open_days[0]
        due = store.conn.execute(
            "SELECT min(due_at) FROM journeys WHERE day = ? AND due_at IS NOT NULL "
            "AND due_at > ?", (day.day, now.astimezone(UTC).isoformat())).fetchone()[0]
        if due:
            return (f"day {day.day} can continue after {_local(plan, due)} {tz}: "
                    f"warmup run {plan_arg} --day {day.day}")
        return f"day {day.day} is {day.status}: warmup run {plan_arg} --day {day.day}"
    remaining = [d for d in days if d.status == "planned"]
    if not remaining:
        return f"all {len(days)} days completed"
    day = remaining[0]
    starts = local_time(plan, date.fromisoformat(day.date))
    if now < starts:
        return (f"day {day.day} can run after {starts.strftime('%Y-%m-%d %H:%M')} {tz} "
                f"(mails at {day.send_time}): warmup run {plan_arg} --day {day.day}")
    return (f"day {day.day} is due (mails at {day.send_time} {tz}): "
            f"warmup run {plan_arg} --day {day.day}")


def plan_status(loaded: LoadedPlan, *, now: datetime | None = None) -> PlanStatus:
    """Everything `warmup status` shows, read from the plan's store."""
    now = now or datetime.now(UTC)
    store = open_store(loaded.store_path, create=False)
    try:
        days = day_figures(loaded, store)
        email_backlog, list_backlog = Outstanding(), Outstanding()
        for d in days:
            for total, part in ((email_backlog, d.emails), (list_backlog, d.list_sync)):
                total.pending += part.pending
                total.failed += part.failed
                total.uncertain += part.uncertain
                total.sent += part.sent
        guardrail = guardrail_state(loaded.plan, days)
        return PlanStatus(
            plan=loaded.plan.name, timezone=loaded.plan.timezone, store=str(loaded.store_path),
            days=days, email_backlog=email_backlog, list_sync_backlog=list_backlog,
            unsubscribes_waiting=unsubscribes_waiting(store), guardrail=guardrail,
            next_action=next_action(loaded, store, days, guardrail, now))
    finally:
        store.close()


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render_table(status: PlanStatus) -> str:
    """The status as fixed-width text."""
    head = ("day", "date", "status", "new plan", "new alloc", "new sent", "klaviyo",
            "pending", "failed", "uncert", "lists", "bounce", "complaint", "unsub")
    rows = [head]
    for d in status.days:
        plan_text = d.new_setting if d.new_limit is None else f"{d.new_setting}={d.new_limit:,}"
        rows.append((str(d.day), d.date, d.status, plan_text, _cell(d.new_allocated),
                     _cell(d.new_sent) if d.status != "planned" else "-",
                     _cell(d.klaviyo_allocated), _cell(d.emails.pending),
                     _cell(d.emails.failed), _cell(d.emails.uncertain),
                     _cell(d.list_sync.pending + d.list_sync.failed),
                     _rate(d.rate(d.hard_bounces)), _rate(d.rate(d.complaints)),
                     _rate(d.rate(d.unsubscribes))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    left = {1, 2}
    lines = [f"plan {status.plan} ({status.timezone}) — store {status.store}"]
    for r in rows:
        cells = [c.ljust(w) if i in left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lists = status.list_sync_backlog
    mail = status.email_backlog
    lines += [
        "",
        f"emails      {mail.sent:,} sent, {mail.pending:,} pending, {mail.failed:,} failed, "
        f"{mail.uncertain:,} uncertain",
        f"list sync   {lists.sent:,} synced, {lists.pending:,} pending, {lists.failed:,} failed",
        f"unsubscribes waiting for Klaviyo: {status.unsubscribes_waiting:,}",
        f"guardrail   {status.guardrail.state}"
        + (f" (day {status.guardrail.day}: {status.guardrail.reason})"
           if status.guardrail.reason else ""),
        f"next        {status.next_action}",
    ]
    return "\n".join(lines)
