"""MX lookups against a real DNS server on loopback UDP: answers, NXDOMAIN, a server that never
answers; company domains resolved once and cached in the store, failures tried again, lookups
off when the plan says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.consent import add_customers
from warmup.clock import now
from warmup.mailboxes.cache import classifier, refresh_mx
from warmup.mailboxes.mx import OUT_OF_TIME, SERVER_DOWN, lookup_all
from warmup.plan.models import MailboxSettings, Plan
from warmup.sandbox.dns import DnsServer, DnsZone, serve_dns
from warmup.store import Store, now_iso, open_store

ZONE = {
    "acme.test": [(10, "aspmx.l.google.com"), (20, "alt1.aspmx.l.google.com")],
    "globex.test": [(0, "globex-test.mail.protection.outlook.com")],
    "initech.test": [(1, "mx.initech.test")],
    "nomx.test": [],
    # the probe domain: a resolver must find its MX before its "no MX" answers are trusted
    "gmail.com": [(5, "gmail-smtp-in.l.google.com")],
}


BOTH = pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)


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
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    # SQLite unless a test asks for both engines (BOTH): the MX cache's statements have a
    # spelling per engine, and the lookups' timeouts make each run of these tests slow
    engine = getattr(request, "param", "sqlite")
    location = tmp_path / "mx.db" if engine == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_store(location)
    emails = ["a@gmail.com", "b@outlook.com", "c@ACME.test", "d@acme.test", "e@globex.test"]
    emails += ["f@initech.test", "g@nomx.test", "h@gone.test", "i@silent.test"]
    add_customers(store, emails)
    yield store
    store.close()


@BOTH
def test_company_domains_resolved_once_and_cached(
    dns_server: DnsServer, store: Store, tmp_path: Path
) -> None:
    from tests.support.consent import write_plan

    plan = _plan(write_plan(tmp_path).plan, nameservers=[dns_server.nameserver], timeout_seconds=2)
    with store.backend.transaction():
        first = refresh_mx(plan, store.backend)
    # consumer domains are never looked up; company domains once each
    assert first.looked_up == 6 and first.failed == 1
    assert set(dns_server.zone.queries) == {
        "acme.test",
        "globex.test",
        "initech.test",
        "nomx.test",
        "gone.test",
        "silent.test",
        "gmail.com",  # the probe, as some answers said "no MX"
    }
    assert all(n == 1 for d, n in dns_server.zone.queries.items() if d != "silent.test")
    sort = classifier(plan, store.backend)
    found = {e: sort.group_of(e) for (e,) in store.backend.execute("SELECT email FROM customers")}
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
    with store.backend.transaction():
        again = refresh_mx(plan, store.backend)
    assert again.looked_up == 1 and again.failed == 1
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert changed == {"silent.test"}
    # a customer added later: only their new domain (and the failed one) is looked up
    add_customers(store, ["j@newco.test", "k@acme.test"])
    before = dict(dns_server.zone.queries)
    with store.backend.transaction():
        third = refresh_mx(plan, store.backend)
    assert third.looked_up == 2 and third.no_mx == 1
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert changed == {"silent.test", "newco.test", "gmail.com"}
    rows = dict(store.backend.execute("SELECT domain, status FROM mailbox_domains"))
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
    with store.backend.transaction():
        report = refresh_mx(plan, store.backend)
    assert report.disabled and report.looked_up == 0
    assert not dns_server.zone.queries
    assert classifier(plan, store.backend).group_of("c@acme.test") == "other"


def test_a_server_that_never_answers_is_given_up_on() -> None:
    domains = [f"d{i:03d}.test" for i in range(120)]
    with serve_dns(DnsZone({}, silent=frozenset(domains))) as dead:
        answers = lookup_all(domains, [dead.nameserver], timeout=0.2, workers=4, give_up_after=4)
        asked = set(dead.zone.queries)
    assert all(a.status == "failed" for a in answers)
    # the first timeouts in a row stop it: at most the lookups already under way are asked
    assert len(asked) <= 4 + 4
    assert sum(a.error == SERVER_DOWN for a in answers) >= len(domains) - 8


def test_answers_between_timeouts_keep_the_lookups_going(dns_server: DnsServer) -> None:
    # a silent domain among answering ones is one failure, not a dead server
    # an answer slower than the timeout on a loaded machine counted as a second silence in a
    # row (0.2 s): a timeout an answer cannot miss, and fewer silences to wait out
    domains = ["silent.test", "acme.test", "globex.test"] * 3
    answers = lookup_all(domains, [dns_server.nameserver], timeout=1.0, workers=1, give_up_after=2)
    assert not any(a.error == SERVER_DOWN for a in answers)
    assert {a.domain for a in answers if a.status == "ok"} == {"acme.test", "globex.test"}


def test_a_spent_budget_asks_nothing_more(dns_server: DnsServer) -> None:
    answers = lookup_all(["acme.test", "globex.test"], [dns_server.nameserver], 2, budget_seconds=0)
    assert [a.error for a in answers] == [OUT_OF_TIME, OUT_OF_TIME]
    assert not dns_server.zone.queries


def test_a_dead_server_is_said_and_its_domains_retried_next_run(tmp_path: Path) -> None:
    from tests.support.consent import write_plan

    domains = [f"dead{i:03d}.test" for i in range(80)]
    store = open_store(tmp_path / "dead.db")
    add_customers(store, [f"x@{d}" for d in domains])
    try:
        with serve_dns(DnsZone({}, silent=frozenset(domains))) as dead:
            plan = _plan(
                write_plan(tmp_path).plan, nameservers=[dead.nameserver], timeout_seconds=0.2
            )
            with store.backend.transaction():
                report = refresh_mx(plan, store.backend)
            asked = len(dead.zone.queries)
        assert report.looked_up == 80 and report.failed == 80
        # 16 lookups at a time, given up after 16 timeouts in a row: most never asked
        assert report.skipped_down == 80 - asked and asked < 80
        assert any("the name server stopped answering" in n for n in report.notes())
        failed = store.backend.execute(
            "SELECT count(*) FROM mailbox_domains WHERE status = 'failed'"
        ).fetchone()[0]
        assert failed == 80  # tried again on the next run
    finally:
        store.close()


@BOTH
def test_a_resolver_that_finds_nothing_is_not_trusted(store: Store, tmp_path: Path) -> None:
    from tests.support.consent import write_plan

    # offline: NXDOMAIN for everything, the probe domain too
    with serve_dns(DnsZone({})) as liar:
        plan = _plan(write_plan(tmp_path).plan, nameservers=[liar.nameserver], timeout_seconds=1)
        with store.backend.transaction():
            report = refresh_mx(plan, store.backend)
    assert report.looked_up == 6 and report.no_mx == 0 and report.doubted == 6
    assert any('"no MX" answers not trusted' in n for n in report.notes())
    rows = dict(store.backend.execute("SELECT domain, status FROM mailbox_domains"))
    assert set(rows.values()) == {"failed"}  # asked again on the next (networked) run


def test_cached_answers_expire(dns_server: DnsServer, store: Store, tmp_path: Path) -> None:
    from tests.support.consent import write_plan

    plan = _plan(write_plan(tmp_path).plan, nameservers=[dns_server.nameserver], timeout_seconds=1)
    with store.backend.transaction():
        refresh_mx(plan, store.backend)
        # the answers of two days ago: "no MX" (kept 1 day) is asked again, MX hosts are not
        store.backend.execute(
            "UPDATE mailbox_domains SET resolved_at = '2000-01-01T00:00:00+00:00'"
        )
        store.backend.execute(
            "UPDATE mailbox_domains SET resolved_at = ? WHERE status = 'ok'",
            (now_iso(now() - timedelta(days=2)),),
        )
    before = dict(dns_server.zone.queries)
    with store.backend.transaction():
        again = refresh_mx(plan, store.backend)
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert changed == {"nomx.test", "gone.test", "silent.test", "gmail.com"}
    assert again.no_mx == 2
    # MX hosts past cache_days are asked again too
    short = _plan(plan, nameservers=[dns_server.nameserver], timeout_seconds=1, cache_days=1)
    before = dict(dns_server.zone.queries)
    with store.backend.transaction():
        refresh_mx(short, store.backend)
    changed = {d for d, n in dns_server.zone.queries.items() if n != before.get(d)}
    assert {"acme.test", "globex.test", "initech.test"} <= changed


def test_a_store_scanned_under_older_rules_is_scanned_again_once(
    dns_server: DnsServer, tmp_path: Path
) -> None:
    from tests.support.consent import write_plan

    store = open_store(tmp_path / "old.db")
    add_customers(store, ["a@live.acme.test", "b@acme.test"])
    try:
        # as an older release left it: every customer scanned, live.* taken for Microsoft's
        with store.backend.transaction():
            store.backend.execute("INSERT INTO mailbox_scans (id, customer_id) VALUES (1, 2)")
            store.backend.execute(
                "INSERT INTO mailbox_domains (domain, status, mx, resolved_at) "
                "VALUES ('acme.test', 'ok', 'aspmx.l.google.com', ?)",
                (now_iso(),),
            )
        plan = _plan(write_plan(tmp_path).plan, nameservers=[dns_server.nameserver])
        with store.backend.transaction():
            first = refresh_mx(plan, store.backend)
        assert set(dns_server.zone.queries) - {"gmail.com"} == {"live.acme.test"}
        assert first.looked_up == 1
        with store.backend.transaction():
            again = refresh_mx(plan, store.backend)
        assert again.looked_up == 0
    finally:
        store.close()


@BOTH
def test_a_capitalised_non_ascii_domain_is_cached_as_the_classifier_spells_it(
    dns_server: DnsServer, store: Store, tmp_path: Path
) -> None:
    from tests.support.consent import write_plan

    # SQL's lower() leaves Ü alone on SQLite and folds it on PostgreSQL: the cache must not
    # depend on the engine
    add_customers(store, ["z@ÜBERCORP.test"])
    plan = _plan(
        write_plan(tmp_path).plan, nameservers=[dns_server.nameserver], timeout_seconds=0.2
    )
    with store.backend.transaction():
        refresh_mx(plan, store.backend)
    cached = {d for (d,) in store.backend.execute("SELECT domain FROM mailbox_domains")}
    assert "übercorp.test" in cached and "Übercorp.test" not in cached
