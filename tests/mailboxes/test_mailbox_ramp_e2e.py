"""Three days of per-mailbox-provider ramps end to end on loopback: the Klaviyo sandbox, the
SES sandbox with its SNS topic signing bounce events back to `warmup serve`, and a DNS server
answering the company domains' MX. Gmail (gmail.com and a company domain hosted by Google) is
capped at 40% of each day, Microsoft (outlook.com and a company domain on Exchange Online) at
15, 30, 45. Day 1's Gmail bounces hold Gmail on day 2 while the others grow; Gmail climbs back
on day 3. Each day, a capped group's overflow stays on Klaviyo: read back from the sandbox's
exclusion list over its API, it is never there, and SES never got its mail."""

from __future__ import annotations

import csv
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest
import yaml

from warmup.app.day import run_and_dispatch
from warmup.app.demo import demo_plan, demo_settings, klaviyo_account
from warmup.app.demo_apis import ApiTarget, start_events, webhook_secret
from warmup.app.sample import write_sample_csv
from warmup.engine.day import run_day
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.plan.calendar import day_date, local_time
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.sandbox.dns import DnsZone, serve_dns
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import serve_ses_in_thread
from warmup.store import open_store

# other (initech) twice as common: it takes the slots the capped groups leave
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "acme-corp.test",
    "globex.test",
    "initech.test",
    "initech.test",
]
# the test's own answer for its addresses (never the code under test's)
GROUP = {
    "gmail.com": "gmail",
    "acme-corp.test": "gmail",
    "outlook.com": "microsoft",
    "globex.test": "microsoft",
    "initech.test": "other",
    "silent.test": "other",
}
ZONE = {
    "acme-corp.test": [(1, "aspmx.l.google.com"), (5, "alt1.aspmx.l.google.com")],
    "globex.test": [(0, "globex-test.mail.protection.outlook.com")],
    "initech.test": [(10, "mx.initech.test")],
    # the probe domain: a resolver must find its MX before its "no MX" answers are trusted
    "gmail.com": [(5, "gmail-smtp-in.l.google.com")],
}
BOUNCES = 5


def _customers(folder: Path) -> Path:
    """The sample export with its addresses spread over the domains; Gmail's five most
    engaged bounce."""
    path = write_sample_csv(folder / "customers.csv", 700, seed=3)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for i, row in enumerate(rows):
        domain = "silent.test" if i % 50 == 4 else DOMAINS[i % len(DOMAINS)]
        row["Email"] = f"c{i:04d}@{domain}"
    for k, row in enumerate(rows[: BOUNCES * len(DOMAINS) : len(DOMAINS)]):
        row["Email"] = f"bounce+{k}@gmail.com"
        row["Last Open"] = row["Last Click"] = "2026-11-30 09:00:00"
        row["Email Marketing Consent"] = "SUBSCRIBED"
        row["Email Suppressions"] = ""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _group(email: str) -> str:
    return GROUP[email.rpartition("@")[2]]


def _exclusion_list(klaviyo_url: str, key: str, revision: str, list_id: str) -> set[str]:
    """The exclusion list's members' emails, read back over the sandbox's Klaviyo API."""
    found: set[str] = set()
    url: str | None = f"{klaviyo_url}/api/lists/{list_id}/profiles"
    headers = {
        "Authorization": f"Klaviyo-API-Key {key}",
        "revision": revision,
        "accept": "application/vnd.api+json",
    }
    while url:
        body: dict[str, Any] = httpx.get(url, headers=headers, timeout=30).raise_for_status().json()
        found |= {p["attributes"]["email"] for p in body["data"]}
        url = body.get("links", {}).get("next")
    return found


@pytest.mark.slow
def test_groups_capped_held_and_overflow_left_on_klaviyo(tmp_path: Path) -> None:
    csv_path = _customers(tmp_path)
    with ExitStack() as stack:
        account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
        klaviyo = stack.enter_context(serve_in_thread(SandboxConfig(fast=True, state=account)))
        ses = stack.enter_context(serve_ses_in_thread(SesSandboxConfig(fast=True)))
        dns = stack.enter_context(serve_dns(DnsZone(ZONE, silent=frozenset({"silent.test"}))))
        topic = ses.app.topic
        start = pendulum.now("Europe/Prague").date() - timedelta(days=3)
        plan = demo_plan(klaviyo_url=klaviyo.base_url, smtp_port=1, start=start)
        plan["providers"]["new"] = {
            "kind": "ses",
            "region": ses.app.config.region,
            "endpoint_url": ses.base_url,
            "configuration_set": "warmup",
        }
        plan["events"] = {"sns": {"trust_url_prefixes_for_tests": [ses.base_url + "/"]}}
        plan["schedule"]["days"] = [
            {"day": d, "new": 50 + 50 * d, "template": f"day-{d:02d}"} for d in range(1, 4)
        ]
        plan["schedule"]["mailbox_caps"] = {"gmail": "40%", "microsoft": [15, 30, 45]}
        plan["mailboxes"] = {"nameservers": [dns.nameserver], "timeout_seconds": 2}
        # the day's pooled 5% stays under the 10% hold line; Gmail's own 12.5% does not
        plan["guardrails"] = {
            "min_sample": 30,
            "hold": {"hard_bounce_rate": 0.1, "complaint_rate": 0.5, "delivered_rate_below": 0.8},
            "rollback": {"hard_bounce_rate": 0.5, "complaint_rate": 0.5},
        }
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        settings = {
            **demo_settings(klaviyo.api_key, tmp_path / "plan.db"),
            "AWS_ACCESS_KEY_ID": ses.access_key_id,
            "AWS_SECRET_ACCESS_KEY": ses.secret_access_key,
            **webhook_secret(),
        }
        loaded = load_plan(plan_path, env=settings)
        import_csv(loaded, csv_path)

        def connect(base_url: str) -> None:
            topic.subscribe(base_url + "/webhooks/ses")
            topic.flush()
            assert topic.confirmed

        start_events(stack, ApiTarget("ses", {}, {}, {}, lambda: 0, connect), loaded)

        preview = run_day(
            loaded, 1, now=local_time(loaded.plan, day_date(loaded.plan, 1), "10:05"), dry_run=True
        ).render()
        assert "mailbox groups:" in preview
        assert "count as `other`: their MX lookup failed" in preview  # silent.test

        mailed: list[Counter[str]] = []
        overflow_listed: list[set[str]] = []
        for day in range(1, 4):
            before = len(ses.app.accepted)
            clock = local_time(loaded.plan, day_date(loaded.plan, day), "10:05")
            run_and_dispatch(loaded, day, now=clock)
            assert topic.flush(60)
            recipients = [a.recipient for a in ses.app.accepted[before:]]
            mailed.append(Counter(_group(r) for r in recipients))
            store = open_store(loaded.store_path)
            try:
                (list_id,) = store.conn.execute(
                    "SELECT list_id FROM klaviyo_lists WHERE ref LIKE 'exclusion:%'"
                ).fetchone()
                allocated = store.conn.execute(
                    "SELECT c.email, a.provider FROM allocations a JOIN customers c "
                    "ON c.id = a.customer_id WHERE a.day = ?",
                    (day,),
                ).fetchall()
            finally:
                store.close()
            listed = _exclusion_list(
                klaviyo.base_url, klaviyo.api_key, loaded.plan.providers.klaviyo.revision, list_id
            )
            new = {e for e, p in allocated if p == "new"}
            overflow = {
                e for e, p in allocated if p == "klaviyo" and _group(e) in ("gmail", "microsoft")
            }
            assert overflow, f"day {day}: no capped group overflowed; the test would prove nothing"
            # everyone the new provider mailed was read back from the list first
            assert set(recipients) <= new <= listed | {r for r in new if "bounce+" in r}
            overflow_listed.append(overflow & listed)

        store = open_store(loaded.store_path)
        try:
            groups = {
                (day, grp): (cap, n, held is not None)
                for day, grp, cap, n, held in store.conn.execute(
                    "SELECT day, grp, cap, new, held FROM mailbox_days"
                )
            }
            bounced = store.conn.execute(
                "SELECT count(*) FROM events WHERE type = 'hard_bounced' AND source = 'ses'"
            ).fetchone()[0]
            cached = dict(store.conn.execute("SELECT domain, status FROM mailbox_domains"))
        finally:
            store.close()
    assert bounced == BOUNCES
    # the capped groups' overflow was never in Klaviyo's exclusion list
    assert overflow_listed == [set(), set(), set()]
    # day 1: gmail 40% of 100, microsoft 15, other the rest; Gmail bounces 5 of 40 (12.5%)
    assert mailed[0] == {"gmail": 40, "microsoft": 15, "other": 45}
    assert groups[(1, "gmail")] == (40, 40, False)
    # day 2: Gmail held at day 1's 40 (its plan said 60) while Microsoft and other grow
    assert groups[(2, "gmail")] == (40, 40, True)
    assert mailed[1] == {"gmail": 40, "microsoft": 30, "other": 80}
    # day 3: day 2 was clean; Gmail's cap climbs back to its own 40% of 200 (the day's 200
    # slots go in rank order, earlier recipients first, so Gmail may fill less than its cap)
    cap, gmail, held = groups[(3, "gmail")]
    assert (cap, held) == (80, False) and 40 < gmail <= 80
    assert groups[(3, "microsoft")] == (45, 45, False)
    assert mailed[2] == {"gmail": gmail, "microsoft": 45, "other": 200 - 45 - gmail}
    # each company domain was looked up by the dry run (which keeps nothing) and once more by
    # day 1, whose answers days 2 and 3 re-used from the store; the silent one every run
    company = [d for d in ZONE if d != "gmail.com"]  # gmail.com: the probe domain
    assert {d: dns.zone.queries[d] for d in company} == {d: 2 for d in company}
    assert dns.zone.queries["silent.test"] >= 4
    assert cached == {
        "acme-corp.test": "ok",
        "globex.test": "ok",
        "initech.test": "ok",
        "silent.test": "failed",
    }
