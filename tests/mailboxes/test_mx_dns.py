"""MX lookups against a real DNS server on loopback UDP: answers, NXDOMAIN, a server that never
answers; company domains resolved once and cached in the store, failures tried again, lookups
off when the plan says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.consent import add_customers
from warmup.mailboxes.cache import classifier, refresh_mx
from warmup.mailboxes.mx import lookup_all
from warmup.plan.models import MailboxSettings, Plan
from warmup.sandbox.dns import DnsServer, DnsZone, serve_dns
from warmup.store import Store, open_store

ZONE = {
    "acme.test": [(10, "aspmx.l.google.com"), (20, "alt1.aspmx.l.google.com")],
    "globex.test": [(0, "globex-test.mail.protection.outlook.com")],
    "initech.test": [(1, "mx.initech.test")],
    "nomx.test": [],
}


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with serve_dns(DnsZone(ZONE, silent=frozenset({"silent.test"}))) as server:
        yield server


def test_lookups_over_udp(dns_server: DnsServer) -> None:
    answers = {
        a.domain: a
        for a in lookup_all(
            ["acme.test", "globex.test", "nomx.test", "gone.test", "silent.test"],
            [dns_server.nameserver],
            timeout=2,
        )
    }
    assert answers["acme.test"].status == "ok"
    assert answers["acme.test"].hosts == ("aspmx.l.google.com", "alt1.aspmx.l.google.com")
    assert answers["globex.test"].hosts == ("globex-test.mail.protection.outlook.com",)
    assert answers["nomx.test"].status == "none"
    assert answers["gone.test"].status == "none"  # NXDOMAIN
    assert answers["silent.test"].status == "failed"
    assert answers["silent.test"].error == "LifetimeTimeout"


def _plan(base: Plan, **settings: object) -> Plan:
    return base.model_copy(update={"mailboxes": MailboxSettings.model_validate(settings)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path / "mx.db")
    emails = ["a@gmail.com", "b@outlook.com", "c@ACME.test", "d@acme.test", "e@globex.test"]
    emails += ["f@initech.test", "g@nomx.test", "h@gone.test", "i@silent.test"]
    add_customers(store, emails)
    yield store
    store.close()


def test_company_domains_resolved_once_and_cached(
    dns_server: DnsServer, store: Store, tmp_path: Path
) -> None:
    from tests.support.consent import write_plan

    plan = _plan(write_plan(tmp_path).plan, nameservers=[dns_server.nameserver], timeout_seconds=2)
    with store.transaction() as conn:
        first = refresh_mx(plan, conn)
    # consumer domains are never looked up; company domains once each
    assert first.looked_up == 6 and first.failed == 1
    assert set(dns_server.zone.queries) == {
        "acme.test",
        "globex.test",
        "initech.test",
        "nomx.test",
        "gone.test",
        "silent.test",
    }
    assert all(n == 1 for d, n in dns_server.zone.queries.items() if d != "silent.test")
    sort = classifier(plan, store.conn)
    found = {e: sort.group_of(e) for (e,) in store.conn.execute("SELECT email FROM customers")}
    assert found == {
        "a@gmail.com": "gmail",
        "b@outlook.com": "microsoft",
        "c@ACME.test": "gmail",
        "d@acme.test": "gmail",
        "e@globex.test": "microsoft",
        "f@initech.test": "other",
        "g@nomx.test": "other",
        "h@gone.test": "other",
        "i@silent.test": "other",
    }
    before = dict(dns_server.zone.queries)
    # another run (another day): only the failed domain is asked again
    with store.transaction() as conn:
        again = refresh_mx(plan, conn)
    assert again.looked_up == 1 and again.failed == 1
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert changed == {"silent.test"}
    # a customer added later: only their new domain (and the failed one) is looked up
    add_customers(store, ["j@newco.test", "k@acme.test"])
    before = dict(dns_server.zone.queries)
    with store.transaction() as conn:
        third = refresh_mx(plan, conn)
    assert third.looked_up == 2
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert changed == {"silent.test", "newco.test"}
    rows = dict(store.conn.execute("SELECT domain, status FROM mailbox_domains"))
    assert rows.pop("newco.test") == "none"
    assert rows == {
        "acme.test": "ok",
        "globex.test": "ok",
        "initech.test": "ok",
        "nomx.test": "none",
        "gone.test": "none",
        "silent.test": "failed",
    }


def test_lookups_off_ask_nothing(dns_server: DnsServer, store: Store, tmp_path: Path) -> None:
    from tests.support.consent import write_plan

    plan = _plan(write_plan(tmp_path).plan, resolve_mx=False, nameservers=[dns_server.nameserver])
    with store.transaction() as conn:
        report = refresh_mx(plan, conn)
    assert report.disabled and report.looked_up == 0
    assert not dns_server.zone.queries
    assert classifier(plan, store.conn).group_of("c@acme.test") == "other"
