"""A day's allocation per mailbox provider group: each group's cap (the plan's
``schedule.mailbox_caps``, lowered by a per-group guardrail hold), applied in the engine's
ranking SQL, then the day's groups recorded for the dry run, status, report and guardrails.

Semantics: customers keep their rank; a customer takes a new-provider slot when their group has
not reached its cap and the day has not reached its limit. The overflow of a capped group stays
on Klaviyo (the allocation's ``no`` edge: not mailed by the new provider, not in the exclusion
list), and its unused slots go to the next customers of other groups in rank order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmup.engine.sql import group_counts, group_fallbacks
from warmup.mailboxes.assign import assign_groups
from warmup.mailboxes.cache import RULES_VERSION, Refresh, active, groups_of
from warmup.mailboxes.groups import BUILTIN_NAMES, OTHER
from warmup.mailboxes.holds import group_holds
from warmup.plan import LoadedPlan
from warmup.plan.models import cap_count
from warmup.store import mailboxes as mailbox_store
from warmup.store.backends import Backend, Executes


@dataclass
class GroupDay:
    name: str
    eligible: int = 0
    cap: int | None = None  # customers; None: no cap
    new: int = 0
    held: str | None = None  # why a guardrail holds the group

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "eligible": self.eligible,
            "cap": self.cap,
            "new": self.new,
            "klaviyo": self.eligible - self.new,
            "held": self.held,
        }


@dataclass
class GroupAllocation:
    groups: dict[str, GroupDay]
    # customers (and their company domains) without an MX answer (lookup off or failed):
    # counted `other`
    fallback_customers: int = 0
    fallback_domains: int = 0
    resolve_disabled: bool = False

    limit: int = 0

    @property
    def new(self) -> int:
        return sum(g.new for g in self.groups.values())

    def notes(self) -> list[str]:
        found = []
        if self.fallback_customers:
            why = (
                "MX lookups are off (mailboxes.resolve_mx: false)"
                if self.resolve_disabled
                else "their MX lookup failed (tried again next run)"
            )
            found.append(
                f"mailbox groups: {self.fallback_customers:,} customers of "
                f"{self.fallback_domains:,} company domains count as `other`: {why}"
            )
        for g in self.groups.values():
            if g.held:
                found.append(f"mailbox group {g.name} held at {g.cap:,}: {g.held}")
        return found


def plan_groups(
    loaded: LoadedPlan,
    conn: Backend,
    day: int,
    volume_day: int,
    limit: int,
    *,
    resolve_disabled: bool = False,
) -> GroupAllocation | None:
    """The day's groups and caps, each customer's group stored (warmup.mailboxes.assign);
    None when the plan has no mailbox groups."""
    plan = loaded.plan
    if not active(plan):
        return None
    # customers imported since the MX step's own transaction get theirs now (nothing to do,
    # and next to no cost, when none were)
    assign_groups(plan, conn, version=RULES_VERSION)
    names = [g.name for g in groups_of(plan)] + [OTHER]
    groups = {name: GroupDay(name) for name in names}
    for name in plan.schedule.mailbox_caps:
        groups.setdefault(name, GroupDay(name)).cap = cap_count(
            plan.schedule.mailbox_cap(name, volume_day), limit
        )
    for name, (held_cap, reason) in group_holds(loaded, conn, day).items():
        group = groups.setdefault(name, GroupDay(name))
        group.cap = held_cap if group.cap is None else min(group.cap, held_cap)
        group.held = reason
    return GroupAllocation(groups, resolve_disabled=resolve_disabled, limit=limit)


def group_caps(groups: GroupAllocation | None) -> dict[str, int] | None:
    """Each capped group's cap for the ranking (None: no mailbox groups)."""
    if groups is None:
        return None
    return {g.name: int(g.cap) for g in groups.groups.values() if g.cap is not None}


def count_groups(conn: Backend, groups: GroupAllocation, eligible: int, marks: str) -> None:
    """Each group's eligible and new customers (customers the new provider cannot mail rank
    past ``eligible``), and those counted ``other`` for want of an MX answer."""
    for name, reached, new in group_counts(conn, eligible):
        group = groups.groups.setdefault(str(name), GroupDay(str(name)))
        group.eligible, group.new = int(reached or 0), int(new or 0)
    groups.fallback_customers, groups.fallback_domains = group_fallbacks(conn, marks)


def record_groups(conn: Backend, day: int, groups: GroupAllocation | None) -> None:
    """Freeze the day's groups with its allocation (inside the caller's transaction; each
    customer's group goes into ``allocations.grp`` with the allocation itself)."""
    if groups is None:
        return
    mailbox_store.replace_day(
        conn, day, [(g.name, g.eligible, g.cap, g.new, g.held) for g in groups.groups.values()]
    )


def frozen_groups(conn: Executes, day: int) -> GroupAllocation | None:
    """A frozen day's groups as recorded (None: the day was not allocated per group)."""
    rows = mailbox_store.day_groups(conn, day)
    if not rows:
        return None
    return GroupAllocation({r[0]: GroupDay(r[0], r[1], r[2], r[3], r[4]) for r in rows})


def customer_group(conn: Executes, day: int, customer_id: int) -> GroupDay | None:
    """The customer's group on a frozen ``day`` with the group's figures that day (None: the
    day had no groups or the customer no allocation)."""
    row = mailbox_store.customer_day_group(conn, day, customer_id)
    return None if row is None else GroupDay(row[0], row[1], row[2], row[3], row[4])


def groups_json(groups: GroupAllocation | None) -> list[dict[str, Any]] | None:
    if groups is None:
        return None
    order = {name: i for i, name in enumerate(BUILTIN_NAMES)}
    ranked = sorted(groups.groups.values(), key=lambda g: (order.get(g.name, -1), g.name))
    return [g.to_json() for g in ranked]


def render_groups(rows: list[dict[str, Any]] | None) -> list[str]:
    """Text lines of a day's groups (the dry run and the run)."""
    if not rows:
        return []
    lines = ["mailbox groups:"]
    for r in rows:
        cap = "no cap" if r["cap"] is None else f"cap {r['cap']:,}"
        held = " (held)" if r.get("held") else ""
        lines.append(
            f"  {r['group']:<10} new {r['new']:>9,} of {r['eligible']:>9,} eligible, "
            f"{cap}{held}; Klaviyo {r['klaviyo']:,}"
        )
    return lines


def group_report(groups: GroupAllocation | None, mx: Refresh, notes: list[str]) -> dict[str, Any]:
    """The allocation's ``groups`` entry, and notes on held groups and on customers counted
    ``other`` for want of an MX answer (appended to ``notes``)."""
    if groups is None:
        return {}
    groups.resolve_disabled = groups.resolve_disabled or mx.disabled
    notes.extend(groups.notes())
    notes.extend(mx.notes())
    return {"groups": groups_json(groups)}
