"""Each day's mailbox provider groups for `warmup status` and the report: eligible, cap, new
customers, emails sent and their bounce and complaint rates, and whether a guardrail held it."""

from __future__ import annotations

from html import escape
from typing import Any

from warmup.mailboxes.groups import BUILTIN_NAMES
from warmup.mailboxes.holds import group_figures, group_holds
from warmup.plan import LoadedPlan
from warmup.store import mailboxes as mailbox_store
from warmup.store.backends import Executes


def coming_holds(loaded: LoadedPlan, conn: Executes, day: int) -> list[str]:
    """The groups a guardrail holds on ``day``, as the run will say them: the frozen day's
    own record once it is allocated, else the holds its figures call for now."""
    from warmup.mailboxes.cache import active

    if not active(loaded.plan):
        return []
    frozen = mailbox_store.day_holds(conn, day)
    if frozen:
        held = {str(g): (int(cap or 0), str(why)) for g, cap, why in frozen if why}
    else:
        held = group_holds(loaded, conn, day)
    return [f"mailbox group {g} held at {cap:,}: {why}" for g, (cap, why) in sorted(held.items())]


def group_rows(conn: Executes) -> list[dict[str, Any]]:
    """One row per day and group that reached the allocation (empty: no groups recorded)."""
    figures = {(f.provider, f.day): f for fs in group_figures(conn, 2**31).values() for f in fs}
    order = {name: i for i, name in enumerate(BUILTIN_NAMES)}
    rows: list[dict[str, Any]] = []
    for day, grp, eligible, cap, new, held in mailbox_store.reached_days(conn):
        f = figures.get((grp, day))
        rows.append(
            {
                "day": day,
                "group": grp,
                "eligible": eligible,
                "cap": cap,
                "new": new,
                "sent": f.sent if f else 0,
                "hard_bounce_rate": f.hard_bounce_rate if f else None,
                "complaint_rate": f.complaint_rate if f else None,
                "held": held,
            }
        )
    rows.sort(key=lambda r: (r["day"], order.get(r["group"], -1), r["group"]))
    return rows


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _cells(r: dict[str, Any], *, why: bool = False) -> list[str]:
    return [
        str(r["day"]),
        r["group"],
        f"{r['eligible']:,}",
        "-" if r["cap"] is None else f"{r['cap']:,}",
        f"{r['new']:,}",
        f"{r['sent']:,}",
        _rate(r["hard_bounce_rate"]),
        _rate(r["complaint_rate"]),
        ("held: " + r["held"] if why else "held") if r["held"] else "",
    ]


HEAD = ["day", "group", "eligible", "cap", "new", "sent", "bounce", "complaint", ""]


def render_group_table(rows: list[dict[str, Any]]) -> list[str]:
    """Fixed-width lines of the groups (none when the plan has no groups)."""
    if not rows:
        return []
    table = [HEAD, *(_cells(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEAD))]
    lines = ["", "mailbox groups"]
    for r in table:
        cells = [
            c.ljust(w) if i == 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines += [f"  day {r['day']} {r['group']} held: {r['held']}" for r in rows if r["held"]]
    return lines


def groups_html(rows: list[dict[str, Any]]) -> str:
    """The report's table of groups ('' when the plan has no groups)."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(r, why=True)) + "</tr>"
        for r in rows
    )
    return f"<h2>Mailbox groups</h2>\n<table><tr>{head}</tr>{body}</table>\n"
