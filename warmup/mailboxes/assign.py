"""Each customer's mailbox group, decided once and stored (``mailbox_customers``), so a day's
ranking groups customers by a join instead of a Python call per customer.

Decided again: customers added since the last assignment, the customers of a domain whose MX
answer changes their group (or whether they count `other` for want of an answer), and everyone
when the plan's groups or the built-in rules change. The decision per domain is the
classifier's (warmup.mailboxes.groups), made once per distinct domain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from warmup.mailboxes.groups import OTHER, Classifier, domain_of
from warmup.plan.models import Plan
from warmup.store import mailboxes as mailbox_store
from warmup.store.backends import Backend

_UP_TO_KEY = "mailbox_groups_up_to"
_RULES_KEY = "mailbox_groups_rules"

Decision = tuple[str, int]  # group, fallback (1: a company domain without an MX answer)


@dataclass
class Decider:
    """Domain → (group, fallback) from the plan's groups and the MX cache as it stands."""

    sort: Classifier
    definite: set[str]
    _memo: dict[str, Decision] = field(default_factory=dict)

    def decide(self, domain: str) -> Decision:
        found = self._memo.get(domain)
        if found is None:
            grp = self.sort.group_of_domain(domain)
            found = (grp, int(grp == OTHER and domain not in self.definite))
            self._memo[domain] = found
        return found


def decider(plan: Plan, conn: Backend) -> Decider:
    from warmup.mailboxes.cache import classifier, resolved_domains

    return Decider(classifier(plan, conn), resolved_domains(conn))


def rules_signature(plan: Plan, version: str) -> str:
    from warmup.mailboxes.cache import groups_of

    groups = [[g.name, list(g.domains), list(g.mx_suffixes)] for g in groups_of(plan)]
    return json.dumps([version, groups], separators=(",", ":"))


def assign_groups(
    plan: Plan,
    conn: Backend,
    *,
    version: str,
    before: Decider | None = None,
    answered: Iterable[str] = (),
) -> None:
    """Bring ``mailbox_customers`` up to date (inside the caller's transaction). ``before`` is
    the decider as it stood before this run stored the MX answers of ``answered`` domains."""
    signature = rules_signature(plan, version)
    up_to = int(mailbox_store.meta_value(conn, _UP_TO_KEY) or 0)
    if mailbox_store.meta_value(conn, _RULES_KEY) != signature:
        mailbox_store.forget_customer_groups(conn)
        mailbox_store.set_meta_value(conn, _RULES_KEY, signature)
        up_to = 0
    last = mailbox_store.last_customer_id(conn)
    if before is None and last <= up_to:
        return  # the steady state: no MX answer came in, no customer was added
    after = decider(plan, conn)
    if before is not None:
        mailbox_store.regroup_domains(
            conn,
            [
                (domain, *after.decide(domain))
                for domain in answered
                if after.decide(domain) != before.decide(domain)
            ],
        )
    if last <= up_to:
        return
    decisions = []
    for raw in mailbox_store.customer_raw_domains(conn, up_to):
        domain = domain_of(raw)
        decisions.append((raw, domain, *after.decide(domain)))
    mailbox_store.assign_customers(conn, up_to, decisions)
    mailbox_store.set_meta_value(conn, _UP_TO_KEY, str(last))
