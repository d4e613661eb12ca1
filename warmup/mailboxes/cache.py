"""Company domains' MX hosts, cached in the store: each domain is looked up once and re-used
across days and runs (a ``failed`` lookup is tried again on the next run)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from warmup.clock import now
from warmup.mailboxes.assign import Decider, assign_groups, decider
from warmup.mailboxes.groups import Classifier, Group, domain_of, plan_groups
from warmup.plan.models import MailboxSettings, Plan
from warmup.store import mailboxes as mailbox_store
from warmup.store import now_iso
from warmup.store.backends import Backend
from warmup.store.mailboxes import MX_FAILED, MX_NONE, MX_OK

# The built-in domain rules' version: a store scanned under other rules is scanned again once.
# 2: `NAME.*` only under a public suffix (live.acme.io is no longer Microsoft's), outlook.*.
RULES_VERSION = "2"
_RULES_KEY = "mailbox_rules_version"


def active(plan: Plan) -> bool:
    """Whether the plan allocates per mailbox provider group: caps, a `mailboxes:` section, or
    a group's own guardrail lines (which judge the groups' recorded figures)."""
    return (
        plan.mailboxes is not None
        or bool(plan.schedule.mailbox_caps)
        or bool(plan.guardrails.groups)
    )


def groups_of(plan: Plan) -> list[Group]:
    own = plan.mailboxes.groups if plan.mailboxes is not None else {}
    return plan_groups({name: (g.domains, g.mx) for name, g in own.items()})


@dataclass
class Refresh:
    """What one run's MX step did (said in the dry run)."""

    looked_up: int = 0
    failed: int = 0
    no_mx: int = 0
    disabled: bool = False
    # "no MX" answers not trusted (the probe domain got none either)
    doubted: int = 0
    # not asked: the server stopped answering, or the run's lookup budget ran out
    skipped_down: int = 0
    skipped_late: int = 0

    def notes(self) -> list[str]:
        found = []
        if self.looked_up:
            found.append(
                f"mailbox groups: looked up the MX of {self.looked_up:,} company domains "
                f"({self.looked_up - self.failed - self.no_mx:,} with MX hosts, "
                f"{self.no_mx:,} no MX, {self.failed:,} failed)"
            )
        if self.doubted:
            found.append(
                f'mailbox groups: {self.doubted:,} "no MX" answers not trusted: the resolver '
                "finds no MX for the probe domain (mailboxes.probe_domain) either — offline? "
                "They count `other` and are asked again next run"
            )
        if self.skipped_down:
            found.append(
                f"mailbox groups: the name server stopped answering (timeouts in a row): "
                f"{self.skipped_down:,} domains not asked, counted `other` and tried again "
                "next run — check mailboxes.nameservers"
            )
        if self.skipped_late:
            found.append(
                f"mailbox groups: the MX lookups' time budget ran out: {self.skipped_late:,} "
                "domains not asked, counted `other` and tried again next run "
                "(mailboxes.lookup_budget_seconds)"
            )
        return found


def _customer_domains(conn: Backend, after: int) -> Iterator[str]:
    # The SQL splits at the first @ (the few addresses with a quoted @ in the local part are
    # split again here at the last one); each is then spelled as the classifier spells it, since
    # SQL's lower() folds only ASCII on SQLite but every letter on PostgreSQL.
    for domain in mailbox_store.customer_domains(conn, after):
        if domain:
            yield domain_of(domain)


def _expired(conn: Backend, settings: MailboxSettings | None) -> set[str]:
    """Cached answers past their time: MX hosts after ``cache_days``, "no MX" after
    ``no_mx_cache_days``."""
    keep = {
        MX_OK: settings.cache_days if settings is not None else 30.0,
        MX_NONE: settings.no_mx_cache_days if settings is not None else 1.0,
    }
    found: set[str] = set()
    for status, days in keep.items():
        cutoff = now_iso(now() - timedelta(days=days))
        found |= mailbox_store.resolved_before(conn, status, cutoff)
    return found


def refresh_mx(plan: Plan, conn: Backend) -> Refresh:
    """Look up the MX hosts of company domains not yet in the cache (nor matched by a group's
    domain rule) and store the answers. Only customers added since the last run's scan are
    read, plus the domains whose lookup failed. The caller's transaction decides whether it
    all stays (a dry run rolls it back)."""
    report = Refresh()
    if not active(plan):
        return report
    before, answered = _refresh_cache(plan, conn, report)
    assign_groups(plan, conn, version=RULES_VERSION, before=before, answered=answered)
    return report


def _refresh_cache(plan: Plan, conn: Backend, report: Refresh) -> tuple[Decider | None, list[str]]:
    """The MX step proper: the decider as it stood before the new answers and the domains
    answered (None, []: nothing looked up)."""
    settings = plan.mailboxes
    if settings is not None and not settings.resolve_mx:
        report.disabled = True
        return None, []
    seen = mailbox_store.scanned_up_to(conn)
    if mailbox_store.meta_value(conn, _RULES_KEY) != RULES_VERSION:
        # domains the older rules matched were never looked up: scan every customer once
        seen = 0
        mailbox_store.set_meta_value(conn, _RULES_KEY, RULES_VERSION)
    last = mailbox_store.last_customer_id(conn)
    rules = Classifier(groups_of(plan), {})
    cached = mailbox_store.domain_statuses(conn)
    stale = _expired(conn, settings)
    todo = sorted(
        {d for d in _customer_domains(conn, seen) if cached.get(d) in (None, MX_FAILED)}
        | {d for d, status in cached.items() if status == MX_FAILED}
        | stale
    )
    # a domain a group's rule names is never looked up (its group is known)
    todo = [d for d in todo if not rules.by_domain_rule(d)]
    mailbox_store.set_scanned_up_to(conn, last)
    if not todo:
        return None, []
    # dnspython loads only when a domain is new: every run and `warmup validate` import this
    # module, and the resolver's import alone costs about 0.1 CPU s
    from warmup.mailboxes.mx import DOUBTED, OUT_OF_TIME, SERVER_DOWN, lookup_all

    answers = lookup_all(
        todo,
        settings.nameservers if settings is not None else [],
        settings.timeout_seconds if settings is not None else 2.0,
        budget_seconds=settings.lookup_budget_seconds if settings is not None else 120.0,
        probe=settings.probe_domain if settings is not None else "gmail.com",
    )
    before = decider(plan, conn)
    stamp = now_iso()
    mailbox_store.store_answers(
        conn, [(a.domain, a.status, " ".join(a.hosts), stamp) for a in answers]
    )
    report.looked_up = len(answers)
    report.failed = sum(a.status == MX_FAILED for a in answers)
    report.no_mx = sum(a.status == MX_NONE for a in answers)
    report.doubted = sum(a.error == DOUBTED for a in answers)
    report.skipped_down = sum(a.error == SERVER_DOWN for a in answers)
    report.skipped_late = sum(a.error == OUT_OF_TIME for a in answers)
    return before, [a.domain for a in answers]


def classifier(plan: Plan, conn: Backend) -> Classifier:
    """Domain → group from the plan's groups and the cached MX answers."""
    mx = {domain: tuple(hosts.split()) for domain, hosts in mailbox_store.mx_hosts(conn).items()}
    return Classifier(groups_of(plan), mx)


def resolved_domains(conn: Backend) -> set[str]:
    """Domains with a definite answer (MX hosts, or none): the rest fall back to ``other``."""
    return mailbox_store.definite_domains(conn)
