"""Company domains' MX hosts, cached in the store: each domain is looked up once and re-used
across days and runs (a ``failed`` lookup is tried again on the next run)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from warmup.mailboxes.groups import Classifier, Group, domain_of, plan_groups
from warmup.plan.models import Plan
from warmup.store import now_iso


def active(plan: Plan) -> bool:
    """Whether the plan allocates per mailbox provider group."""
    return plan.mailboxes is not None or bool(plan.schedule.mailbox_caps)


def groups_of(plan: Plan) -> list[Group]:
    own = plan.mailboxes.groups if plan.mailboxes is not None else {}
    return plan_groups({name: (g.domains, g.mx) for name, g in own.items()})


@dataclass
class Refresh:
    """What one run's MX step did (said in the dry run)."""

    looked_up: int = 0
    failed: int = 0
    disabled: bool = False


def _customer_domains(conn: sqlite3.Connection, after: int) -> Iterator[str]:
    # instr finds the first @; the few addresses with a quoted @ in the local part are split
    # again in Python at the last one
    for (domain,) in conn.execute(
        "SELECT DISTINCT lower(substr(email, instr(email, '@') + 1)) FROM customers WHERE id > ?",
        (after,),
    ):
        if domain and "@" not in domain:
            yield domain.rstrip(".")
        elif domain:
            yield domain_of(domain)


def refresh_mx(plan: Plan, conn: sqlite3.Connection) -> Refresh:
    """Look up the MX hosts of company domains not yet in the cache (nor matched by a group's
    domain rule) and store the answers. Only customers added since the last run's scan are
    read, plus the domains whose lookup failed. The caller's transaction decides whether it
    all stays (a dry run rolls it back)."""
    report = Refresh()
    if not active(plan):
        return report
    settings = plan.mailboxes
    if settings is not None and not settings.resolve_mx:
        report.disabled = True
        return report
    row = conn.execute("SELECT customer_id FROM mailbox_scans WHERE id = 1").fetchone()
    seen = int(row[0]) if row else 0
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()
    rules = Classifier(groups_of(plan), {})
    cached = dict(conn.execute("SELECT domain, status FROM mailbox_domains"))
    todo = sorted(
        {d for d in _customer_domains(conn, seen) if cached.get(d) in (None, "failed")}
        | {d for d, status in cached.items() if status == "failed"}
    )
    # a domain a group's rule names is never looked up (its group is known)
    todo = [d for d in todo if not rules.by_domain_rule(d)]
    conn.execute(
        "INSERT OR REPLACE INTO mailbox_scans (id, customer_id) VALUES (1, ?)", (int(last),)
    )
    if not todo:
        return report
    # dnspython loads only when a domain is new: every run and `warmup validate` import this
    # module, and the resolver's import alone costs about 0.1 CPU s
    from warmup.mailboxes.mx import lookup_all

    answers = lookup_all(
        todo,
        settings.nameservers if settings is not None else [],
        settings.timeout_seconds if settings is not None else 2.0,
    )
    stamp = now_iso()
    conn.executemany(
        "INSERT OR REPLACE INTO mailbox_domains (domain, status, mx, resolved_at) "
        "VALUES (?, ?, ?, ?)",
        [(a.domain, a.status, " ".join(a.hosts), stamp) for a in answers],
    )
    report.looked_up = len(answers)
    report.failed = sum(a.status == "failed" for a in answers)
    return report


def classifier(plan: Plan, conn: sqlite3.Connection) -> Classifier:
    """Domain → group from the plan's groups and the cached MX answers."""
    mx = {
        domain: tuple(hosts.split())
        for domain, hosts in conn.execute(
            "SELECT domain, mx FROM mailbox_domains WHERE status = 'ok'"
        )
    }
    return Classifier(groups_of(plan), mx)


def resolved_domains(conn: sqlite3.Connection) -> set[str]:
    """Domains with a definite answer (MX hosts, or none): the rest fall back to ``other``."""
    return {
        d for (d,) in conn.execute("SELECT domain FROM mailbox_domains WHERE status != 'failed'")
    }
