"""Each customer's mailbox group stored once (warmup.mailboxes.assign): decided for everyone on
the first run, then only for new customers, the customers of a domain whose MX answer changed
their group, and everyone when the plan's groups change; the stored groups are the
classifier's own answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.consent import add_customers, write_plan
from warmup.mailboxes.allocation import plan_groups
from warmup.mailboxes.cache import refresh_mx
from warmup.plan.models import MailboxSettings, Plan
from warmup.sandbox.dns import DnsZone, serve_dns
from warmup.store import Store, open_store

ZONE = {
    "acme.test": [(10, "aspmx.l.google.com")],
    "initech.test": [(1, "mx.initech.test")],
    "gmail.com": [(5, "gmail-smtp-in.l.google.com")],  # the probe domain
}


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    # on SQLite and PostgreSQL: assigning and re-deciding groups has a spelling per engine
    store = open_store(store_location)
    add_customers(store, ["a@gmail.com", "b@Outlook.com", "c@acme.test", "d@initech.test"])
    add_customers(store, ["e@silent.test", "f@silent.test"])
    yield store
    store.close()


def _plan(base: Plan, nameserver: str, **more: object) -> Plan:
    settings = MailboxSettings.model_validate(
        {"nameservers": [nameserver], "timeout_seconds": 0.5, **more}
    )
    return base.model_copy(update={"mailboxes": settings})


def _stored(store: Store) -> dict[str, tuple[str, int]]:
    return {
        email: (grp, fallback)
        for email, grp, fallback in store.backend.execute(
            "SELECT c.email, m.grp, m.fallback FROM customers c "
            "JOIN mailbox_customers m ON m.customer_id = c.id"
        )
    }


def test_groups_stored_then_kept_up_to_date(store: Store, tmp_path: Path) -> None:
    base = write_plan(tmp_path).plan
    with serve_dns(DnsZone(ZONE, silent=frozenset({"silent.test"}))) as dns:
        plan = _plan(base, dns.nameserver)
        with store.backend.transaction():
            refresh_mx(plan, store.backend)
    assert _stored(store) == {
        "a@gmail.com": ("gmail", 0),
        "b@Outlook.com": ("microsoft", 0),
        "c@acme.test": ("gmail", 0),
        "d@initech.test": ("other", 0),
        # no MX answer yet: `other`, marked as such for the dry run's note
        "e@silent.test": ("other", 1),
        "f@silent.test": ("other", 1),
    }
    # silent.test answers now, with Microsoft's MX: its customers change group; a customer
    # added since gets one
    add_customers(store, ["g@acme.test"])
    answering = {**ZONE, "silent.test": [(0, "silent-test.mail.protection.outlook.com")]}
    with serve_dns(DnsZone(answering)) as dns:
        plan = _plan(base, dns.nameserver)
        with store.backend.transaction():
            refresh_mx(plan, store.backend)
    found = _stored(store)
    assert found["e@silent.test"] == found["f@silent.test"] == ("microsoft", 0)
    assert found["g@acme.test"] == ("gmail", 0)
    assert found["d@initech.test"] == ("other", 0)
    # the plan's own group for initech.test: everyone is decided again
    with serve_dns(DnsZone(answering)) as dns:
        own = _plan(base, dns.nameserver, groups={"initech": {"domains": ["initech.test"]}})
        with store.backend.transaction():
            refresh_mx(own, store.backend)
    found = _stored(store)
    assert found["d@initech.test"] == ("initech", 0)
    assert found["c@acme.test"] == ("gmail", 0) and len(found) == 7


def test_customers_imported_after_the_mx_step_get_their_group_at_the_allocation(
    store: Store, tmp_path: Path
) -> None:
    loaded = write_plan(tmp_path)
    plan = loaded.plan.model_copy(
        update={"mailboxes": MailboxSettings.model_validate({"resolve_mx": False})}
    )
    with store.backend.transaction():
        refresh_mx(plan, store.backend)
    # another process imports between the MX step's transaction and the allocation's
    add_customers(store, ["late@icloud.com"])
    with store.backend.transaction():
        groups = plan_groups(dataclasses.replace(loaded, plan=plan), store.backend, 1, 1, 100)
    assert groups is not None
    assert _stored(store)["late@icloud.com"] == ("apple", 0)
