"""`warmup report`: one self-contained HTML file — ramp, rates against the guardrails, a day's
funnel on the scenario graph, and the list-sync state. Inline SVG and CSS only: it opens offline
and can be mailed as an attachment."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path

from warmup.clock import show
from warmup.errors import InvalidInput
from warmup.mailboxes.status import groups_html
from warmup.plan.loader import LoadedPlan
from warmup.report.comparison import comparison_html
from warmup.report.figures import NOT_RUN, DayRow
from warmup.report.funnel import day_funnel, latest_day
from warmup.report.graph import layered_layout
from warmup.report.status import PlanStatus, plan_status
from warmup.report.svg import (
    HOLD,
    KLAVIYO,
    NEW_SENT,
    PLANNED,
    ROLLBACK,
    SERIES,
    NodeBox,
    Series,
    bar_chart,
    funnel_graph,
    line_chart,
)
from warmup.store import open_store
from warmup.store.backends import store_location

_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; background: #fff; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.note { color: #555; font-size: 13px; } .state { font-weight: bold; }
"""


def _planned(d: DayRow) -> float | None:
    limit = d.new_limit if d.new_limit is not None else d.new_estimate
    if limit is not None:
        return float(limit)
    return float(d.new_setting) if d.new_setting.isdigit() else None


def ramp_svg(days: list[DayRow]) -> str:
    labels = [f"day {d.day}" for d in days]
    return bar_chart(
        "Ramp: planned vs actual volume per provider",
        labels,
        [
            Series("new provider planned", PLANNED, [_planned(d) for d in days]),
            Series(
                "new provider sent",
                NEW_SENT,
                [float(d.new_sent) if d.status not in NOT_RUN else None for d in days],
            ),
            Series(
                "Klaviyo allocated",
                KLAVIYO,
                [
                    float(d.klaviyo_allocated) if d.klaviyo_allocated is not None else None
                    for d in days
                ],
            ),
        ],
    )


def rates_svgs(loaded: LoadedPlan, days: list[DayRow]) -> str:
    rails = loaded.plan.guardrails
    labels = [f"day {d.day}" for d in days]

    def rate(name: str) -> list[float | None]:
        return [getattr(d.mail, name) if d.mail and d.mail.sent else None for d in days]

    bounce = line_chart(
        "Hard bounce rate against the guardrails",
        labels,
        [Series("hard bounce rate", SERIES[0], rate("hard_bounce_rate"))],
        lines=[
            ("hold", HOLD, rails.hold.hard_bounce_rate),
            ("rollback", ROLLBACK, rails.rollback.hard_bounce_rate),
        ],
    )
    complaint = line_chart(
        "Complaint rate against the guardrails",
        labels,
        [Series("complaint rate", SERIES[1], rate("complaint_rate"))],
        lines=[
            ("hold", HOLD, rails.hold.complaint_rate),
            ("rollback", ROLLBACK, rails.rollback.complaint_rate),
        ],
    )
    unsub = line_chart(
        "Unsubscribe rate",
        labels,
        [Series("unsubscribe rate", SERIES[2], rate("unsubscribe_rate"))],
    )
    return bounce + complaint + unsub


def funnel_svg(loaded: LoadedPlan, day: int, now: datetime) -> str:
    store = open_store(loaded.store_path, create=False)
    try:
        funnel = day_funnel(store, day, now.astimezone(UTC).isoformat())
    finally:
        store.close()
    scenario = loaded.scenario
    boxes = []
    for placed in layered_layout(scenario):
        node_id = placed.node.id
        detail = f"{funnel.parked[node_id]:,} waiting here" if funnel.parked[node_id] else ""
        boxes.append(NodeBox(placed, funnel.reached[node_id], detail))
    outcomes = ", ".join(f"{k}: {v:,}" for k, v in sorted(funnel.outcomes.items()))
    return (
        funnel_graph(f"Day {day} funnel on {scenario.name}", boxes, funnel.edges(scenario))
        + f'<p class="note">Outcomes of day {day}: {escape(outcomes or "none yet")}</p>'
    )


def _table(head: list[str], rows: list[list[str]], left: int = 0) -> str:
    cells = "".join(
        f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"l" if i < left else ""}">{escape(c)}</td>' for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def days_table(days: list[DayRow]) -> str:
    def n(value: int | None) -> str:
        return "–" if value is None else f"{value:,}"

    return _table(
        [
            "day",
            "date",
            "status",
            "template",
            "new plan",
            "new allocated",
            "new sent",
            "Klaviyo",
            "hard bounces",
            "complaints",
            "unsubscribes",
        ],
        [
            [
                str(d.day),
                d.date,
                d.status,
                d.template or "",
                d.new_setting,
                n(d.new_allocated),
                n(d.new_sent) if d.status not in NOT_RUN else "–",
                n(d.klaviyo_allocated),
                *(
                    (n(d.mail.hard_bounced), n(d.mail.complained), n(d.mail.unsubscribed))
                    if d.mail
                    else ("–", "–", "–")
                ),
            ]
            for d in days
        ],
        left=4,
    )


def list_sync_html(status: PlanStatus) -> str:
    rows = [
        [str(d.day), f"{d.list_sync.sent:,}", f"{d.list_sync.pending:,}", f"{d.list_sync.failed:,}"]
        for d in status.days
        if d.status not in NOT_RUN
    ]
    total = status.list_sync_backlog
    attention = [
        [str(a["day"]), str(a["email"] or ""), str(a["status"]), str(a["error"] or "")]
        for a in total.get("attention", [])
    ]
    return (
        _table(["day", "synced", "pending", "failed or on hold"], rows)
        + f'<p class="note">Klaviyo list calls: {total["sent"]:,} synced, '
        f"{total['pending'] + total['sending']:,} pending, {total['failed']:,} failed, "
        f"{total['on_hold']:,} on hold. Unsubscribes waiting for Klaviyo's unsubscribe "
        f"list: {status.unsubscribes_waiting:,}.</p>"
        + (
            _table(["day", "email", "status", "Klaviyo said"], attention, left=4)
            if attention
            else ""
        )
    )


def render_report(
    loaded: LoadedPlan, *, day: int | None = None, now: datetime | None = None
) -> str:
    """The report as one HTML document."""
    now = now or datetime.now(UTC)
    status = plan_status(loaded, now=now)
    if day is not None and not 1 <= day <= len(status.days):
        raise InvalidInput(
            f"--day {day} is not a day of plan {loaded.plan.name}",
            hint=f"choose a day from 1 to {len(status.days)}",
        )
    if day is None:
        store = open_store(loaded.store_path, create=False)
        try:
            day = latest_day(store)
        finally:
            store.close()
    funnel = (
        funnel_svg(loaded, day, now)
        if day is not None
        else '<p class="note">No day has run yet.</p>'
    )
    rail = status.guardrail
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>warmup report — {escape(loaded.plan.name)}</title>
<style>{_CSS}</style></head><body>
<h1>Warm-up report: {escape(loaded.plan.name)}</h1>
<p class="note">Generated {escape(show(now, loaded.plan.timezone))} from
{escape(store_location(loaded.store_path))}. Plan time zone {escape(loaded.plan.timezone)}.</p>
<p>Guardrails{f" for day {rail.day}" if rail.day <= len(status.days) else ""}:
<span class="state">{escape(rail.action)}</span>
{escape("; ".join([*rail.reasons, *rail.groups_held]))}<br>
Next: {escape(status.next_action)}</p>
<h2>Ramp</h2>
{ramp_svg(status.days)}
<h2>Bounces, complaints and unsubscribes</h2>
{rates_svgs(loaded, status.days)}
<h2>Funnel{f" of day {day}" if day is not None else ""}</h2>
{funnel}
{groups_html(status.mailbox_groups)}{comparison_html(status.comparison)}<h2>Klaviyo list sync</h2>
{list_sync_html(status)}
<h2>Days</h2>
{days_table(status.days)}
</body></html>
"""


def write_report(
    loaded: LoadedPlan, out: Path | str, *, day: int | None = None, now: datetime | None = None
) -> Path:
    """Write the HTML report to ``out``; returns its path."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InvalidInput(
            f"--html {out} should be an .html file",
            hint="give a file name ending in .html, like report.html",
        )
    text = render_report(loaded, day=day, now=now)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
