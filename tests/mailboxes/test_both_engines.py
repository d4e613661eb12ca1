"""A plan with mailbox groups decides alike on SQLite and PostgreSQL: MX answers from a DNS
server on loopback, each customer's group, allocations with their groups, outbox rows, the
days' group records, and what the dry run, `warmup status --json` and `warmup explain` say;
and a store copied SQLite → PostgreSQL mid-ramp carries on as the SQLite store does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.mailboxes.mailbox_helpers import RAMP, plan_text
from tests.support.consent import add_customers
from warmup.cli import app
from warmup.plan import LoadedPlan, load_plan
from warmup.sandbox.dns import DnsServer, DnsZone, serve_dns
from warmup.store import open_store
from warmup.store.copy import copy_store

runner = CliRunner()

ZONE = {
    "acme.test": [(10, "aspmx.l.google.com")],  # Google-hosted: gmail
    "globex.test": [(0, "globex-test.mail.protection.outlook.com")],  # microsoft
    "initech.test": [(1, "mx.initech.test")],  # other, answered
    "gmail.com": [(5, "gmail-smtp-in.l.google.com")],  # the probe domain
}
DOMAINS = ["gmail.com", "outlook.com", "acme.test", "globex.test", "initech.test", "nomx.test"]

# What a day decided, without wall-clock times; JSON payloads compared as JSON.
QUERIES = {
    "allocations": "SELECT customer_id, provider, tier, grp FROM allocations WHERE day = ?",
    "outbox": (
        "SELECT key, kind, provider, customer_id, payload, status FROM outbox_rows WHERE day = ?"
    ),
    "mailbox_days": "SELECT grp, eligible, cap, new, held FROM mailbox_days WHERE day = ?",
    "days": "SELECT new_limit, new_allocated, klaviyo_allocated FROM days WHERE day = ?",
}
STATE = {
    "mailbox_customers": "SELECT customer_id, domain, grp, fallback FROM mailbox_customers",
    "mailbox_domains": "SELECT domain, status, mx FROM mailbox_domains",
}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "mailbox-test-secret")


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with serve_dns(DnsZone(ZONE)) as server:
        yield server


def _plan(tmp: Path, nameserver: str) -> LoadedPlan:
    path = plan_text(
        tmp,
        f'    gmail: "40%"\n    microsoft: {RAMP}\n',
        mailboxes=f"mailboxes: {{nameservers: ['{nameserver}'], timeout_seconds: 2}}\n",
        volumes={1: 40, 2: 70, 3: 100},
    )
    return load_plan(path)


def _sqlite_store(tmp: Path) -> Path:
    path = tmp / "store.db"
    with closing(open_store(path)) as store:
        add_customers(store, [f"c{i:03d}@{DOMAINS[i % len(DOMAINS)]}" for i in range(180)])
    return path


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=120)
    assert result.exit_code == 0, result.output
    return result.output


def _run(loaded: LoadedPlan, day: int, *extra: str) -> str:
    return _cli(
        "run", str(loaded.path), "--day", str(day), "--no-dispatch",
        "--now", f"2026-12-0{day}T12:00", *extra,
    )  # fmt: skip


def _rows(location: str, day: int) -> dict[str, object]:
    with closing(open_store(location)) as store:
        found: dict[str, object] = {
            name: sorted(tuple(r) for r in store.backend.execute(sql, (day,)))
            for name, sql in QUERIES.items()
        }
        found.update(
            (name, sorted(tuple(r) for r in store.backend.execute(sql)))
            for name, sql in STATE.items()
        )
    found["outbox"] = [(*r[:4], json.loads(str(r[4])), r[5]) for r in found["outbox"]]  # type: ignore[attr-defined]
    return found


def _said(loaded: LoadedPlan, location: str) -> dict[str, object]:
    """What status and explain say of the store (one customer per group)."""
    status = json.loads(_cli("status", str(loaded.path), "--json"))
    explained = {
        email: _cli("explain", str(loaded.path), email, "--day", "1")
        for email in ("c000@gmail.com", "c003@globex.test", "c002@acme.test", "c005@nomx.test")
    }
    return {"groups": status["mailbox_groups"], "held": status["guardrail"], **explained}


def _day_on(
    loaded: LoadedPlan, location: str, day: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, dict[str, object]]:
    monkeypatch.setenv("WARMUP_STORE", location)
    preview = _run(loaded, day, "--dry-run")
    out = _run(loaded, day)
    return preview, out, _rows(location, day)


def test_a_capped_ramp_decides_alike_on_both_engines(
    tmp_path: Path, postgres_url: str, dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store = str(_sqlite_store(tmp_path))
    copy_store(sqlite_store, postgres_url)
    loaded = _plan(tmp_path, dns_server.nameserver)
    for day in (1, 2):
        on_sqlite = _day_on(loaded, sqlite_store, day, monkeypatch)
        on_postgres = _day_on(loaded, postgres_url, day, monkeypatch)
        assert on_postgres == on_sqlite
    preview, _, rows = on_sqlite
    # the groups did decide: capped, answered by DNS, on the record
    assert "gmail      new        28 of        60 eligible, cap 28" in preview
    assert ("microsoft", 60, 20, 20, None) in rows["mailbox_days"]  # type: ignore[operator]
    decided = {r[1:] for r in rows["mailbox_customers"]}  # type: ignore[attr-defined]
    assert decided == {
        ("gmail.com", "gmail", 0),
        ("acme.test", "gmail", 0),
        ("outlook.com", "microsoft", 0),
        ("globex.test", "microsoft", 0),
        ("initech.test", "other", 0),
        ("nomx.test", "other", 0),
    }
    said = {}
    for location in (sqlite_store, postgres_url):
        monkeypatch.setenv("WARMUP_STORE", location)
        said[location] = _said(loaded, location)
    assert said[postgres_url] == said[sqlite_store]
    assert "microsoft at its cap of 10" in str(said[sqlite_store]["c003@globex.test"])


def test_a_store_copied_mid_ramp_carries_on_alike(
    tmp_path: Path, postgres_url: str, dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store = str(_sqlite_store(tmp_path))
    loaded = _plan(tmp_path, dns_server.nameserver)
    _day_on(loaded, sqlite_store, 1, monkeypatch)
    copy_store(sqlite_store, postgres_url)
    for day in (2, 3):
        on_sqlite = _day_on(loaded, sqlite_store, day, monkeypatch)
        on_postgres = _day_on(loaded, postgres_url, day, monkeypatch)
        assert on_postgres == on_sqlite
    assert "mailbox groups:" in on_sqlite[0]
