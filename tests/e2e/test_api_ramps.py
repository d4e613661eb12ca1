"""A 5-day ramp on SES and on SendGrid, end to end on loopback: Klaviyo sandbox, the API
sandbox, `warmup serve` receiving the provider's signed events. Bounces and a complaint from
day 1 arrive as signed events, hold day 2 at day 1's volume, suppress and unsubscribe those
customers; the ramp then climbs back. Every event is stored once; a forged one is refused."""

from __future__ import annotations

import csv
import json
import os
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pendulum
import pytest
import yaml

from warmup.app.day import run_and_dispatch
from warmup.app.demo import demo_plan, demo_settings, klaviyo_account
from warmup.app.demo_apis import api_target, start_events
from warmup.app.sample import write_sample_csv
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.plan.calendar import day_date, local_time
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.store import open_store

BAD = ["bounce+a", "bounce+b", "bounce+c", "complaint+d"]


def _customers(folder: Path) -> Path:
    """The sample export, with its four most engaged customers made to bounce or complain."""
    path = write_sample_csv(folder / "customers.csv", 600, seed=1)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    for row, local in zip(rows, BAD, strict=False):
        row["Email"] = f"{local}@example.com"
        row["Last Open"] = row["Last Click"] = "2026-11-30 09:00:00"
        row["Email Marketing Consent"] = "SUBSCRIBED"
        row["Email Suppressions"] = ""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["ses", "sendgrid"])
def test_a_five_day_ramp_held_by_signed_bounce_and_complaint_events(
    tmp_path: Path, provider: str
) -> None:
    csv_path = _customers(tmp_path)
    with ExitStack() as stack:
        account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
        klaviyo = stack.enter_context(serve_in_thread(SandboxConfig(fast=True, state=account)))
        target = stack.enter_context(api_target(provider))
        start = pendulum.now("Europe/Prague").date() - timedelta(days=5)
        plan = demo_plan(klaviyo_url=klaviyo.base_url, smtp_port=1, start=start)
        plan["providers"]["new"] = target.new
        plan["events"] = target.events
        plan["schedule"]["days"] = [
            {"day": d, "new": 50 * d, "template": f"day-{d:02d}"} for d in range(1, 6)
        ]
        plan["guardrails"] = {
            "min_sample": 50,
            "hold": {"hard_bounce_rate": 0.02, "complaint_rate": 0.005},
            "rollback": {"hard_bounce_rate": 0.5, "complaint_rate": 0.5},
        }
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        settings = demo_settings(klaviyo.api_key, tmp_path / "plan.db", target)
        loaded = load_plan(plan_path, env=settings)
        assert "KLAVIYO_API_KEY" not in os.environ  # handed down, not set in the process
        import_csv(loaded, csv_path)
        serve_url = start_events(stack, target, loaded)
        volumes = []
        for day in range(1, 6):
            clock = local_time(loaded.plan, day_date(loaded.plan, day), "10:05")
            run_and_dispatch(loaded, day, now=clock)
            target.settle()
            volumes.append(target.delivered())
        before = _stored(loaded.store_path)
        target.replay()
        target.settle()
        forged = httpx.post(
            serve_url + target.path,
            content=json.dumps([{"event": "spamreport", "email": "x@example.com"}]),
            headers={"X-Twilio-Email-Event-Webhook-Timestamp": "1", "x-amz-sns-message-type": "x"},
        )
        assert forged.status_code in (400, 401, 403)
        assert _stored(loaded.store_path) == before
        store = open_store(loaded.store_path)
        try:
            days = store.conn.execute(
                "SELECT day, new_allocated, volume_day FROM days ORDER BY day"
            ).fetchall()
            events = store.conn.execute(
                "SELECT type, count(*) FROM events WHERE source = ? GROUP BY type", (provider,)
            ).fetchall()
            consent = dict(
                store.conn.execute(
                    "SELECT c.email, k.status FROM customers c JOIN consents k "
                    "ON k.customer_id = c.id WHERE c.email LIKE '%+%'"
                ).fetchall()
            )
            sent = store.conn.execute(
                "SELECT count(*) FROM outbox WHERE kind = 'email' AND status = 'sent'"
            ).fetchone()[0]
        finally:
            store.close()
    # Day 1's 3 hard bounces (6%) and 1 complaint (2% of delivered) hold day 2 at day 1's
    # volume; day 2 is clean, so the ramp climbs back one schedule step a day.
    assert [(d, v) for d, _, v in days] == [(1, None), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert [n for _, n, _ in days] == [50, 50, 100, 150, 200]
    assert consent == {
        "bounce+a@example.com": "suppressed",
        "bounce+b@example.com": "suppressed",
        "bounce+c@example.com": "suppressed",
        "complaint+d@example.com": "unsubscribed",
    }
    counts = dict(events)
    assert counts.pop("hard_bounced") == 3
    assert counts.pop("complained") == 1
    # Every other message sent was delivered, and its delivery stored exactly once.
    assert counts == {"delivered": sent - 3}
    assert before == sent + 1
    assert volumes[-1] == sent


def _stored(path: Path) -> int:
    store = open_store(path)
    try:
        return int(store.conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        store.close()
