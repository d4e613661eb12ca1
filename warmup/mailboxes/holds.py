"""Guardrails per mailbox provider group: a group whose hard bounce, complaint or delivered
rate (deferrals and soft bounces lower it) crosses its hold lines — its own under
``guardrails.groups.NAME``, the plan's elsewhere — is held at its last day's count, while the
other groups go on with the ramp.

A group's figures pool its latest sending days, newest first, until they hold ``min_sample``
sent emails (the group's own, else the plan's; as the day's own guardrails do); below that,
its rates do not count yet. Figures come from the new-provider emails of each group's customers
(``allocations.grp``) and the events about them."""

from __future__ import annotations

from warmup.guardrails import DayFigures, _breaches
from warmup.plan import LoadedPlan
from warmup.store import mailboxes as mailbox_store
from warmup.store.backends import Executes


def group_figures(conn: Executes, before: int) -> dict[str, list[DayFigures]]:
    """Each group's figures per sending day before ``before``, oldest first."""
    found: dict[str, list[DayFigures]] = {}
    for grp, day, sent, hard, soft, complained, unsub in mailbox_store.group_figures(conn, before):
        found.setdefault(str(grp), []).append(
            DayFigures(int(day), str(grp), sent, hard, soft, complained, unsub)
        )
    return found


def group_holds(loaded: LoadedPlan, conn: Executes, day: int) -> dict[str, tuple[int, str]]:
    """Groups held on ``day``: group → (its cap: the count it got on its last sending day,
    why)."""
    held: dict[str, tuple[int, str]] = {}
    for grp, figures in group_figures(conn, day).items():
        g = loaded.plan.guardrails.for_group(grp)
        window: list[DayFigures] = []
        for f in reversed(figures):
            window.append(f)
            if sum(w.sent for w in window) >= g.min_sample:
                break
        pooled = DayFigures(
            max(w.day for w in window),
            grp,
            sum(w.sent for w in window),
            sum(w.hard_bounced for w in window),
            sum(w.soft_bounced for w in window),
            sum(w.complained for w in window),
            sum(w.unsubscribed for w in window),
        )
        if pooled.sent < g.min_sample:
            continue
        breaches = _breaches(pooled, g, "hold")
        if not breaches:
            continue
        last = mailbox_store.last_new(conn, grp, day)
        days = sorted(w.day for w in window)
        span = f"day {days[0]}" if len(days) == 1 else f"days {days[0]}–{days[-1]}"
        cap = last or 0
        held[grp] = (cap, f"{span}: " + "; ".join(breaches))
    return held
