"""Fourteen days of `warmup run` against a sandbox with every adversity of issue 11 at once:
a strict account (404 for dead ids, non-ASCII local parts refused), shared phones, addresses
Klaviyo refuses, stale Klaviyo ids, another client editing the list, injected faults, and
customers unsubscribing between days. Every day, whoever was mailed is exactly whoever warmup
read back from Klaviyo's exclusion list; nobody unsubscribed is mailed or subscribed again."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from warmup.app.demo import demo_plan, klaviyo_account
from warmup.app.sample import write_sample_csv
from warmup.cli.app import app
from warmup.email.sink import smtp_sink
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.store import open_store

START = date(2026, 12, 1)


def test_fourteen_adversarial_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "adversarial-test-secret")
    store_path = tmp_path / "store.db"
    monkeypatch.setenv("WARMUP_STORE", str(store_path))
    csv_path = write_sample_csv(tmp_path / "customers.csv", 300, seed=11)
    account_file = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    config = SandboxConfig(fast=True, state=account_file, seed=11, strict=True, meddle=0.3)
    config.faults = 0.03
    runner = CliRunner()
    with serve_in_thread(config) as sandbox, smtp_sink() as sink:
        monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
        plan = demo_plan(klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=START)
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        assert runner.invoke(app, ["import", str(plan_path), str(csv_path), "-q"]).exit_code == 0
        store = open_store(store_path)
        with store.transaction() as conn:
            # shared phones, addresses Klaviyo refuses, dead Klaviyo ids, international ones
            conn.execute("UPDATE customers SET phone = '+420700000001' WHERE id % 7 = 0")
            conn.execute("UPDATE customers SET email = 'x..' || email WHERE id % 23 = 0")
            conn.execute(
                "UPDATE customers SET klaviyo_id = '01DEADPROFILE' || id, "
                "klaviyo_id_confirmed = 1 WHERE id % 11 = 0"
            )
            conn.execute("UPDATE customers SET email = 'sofía.' || email WHERE id % 13 = 0")
        account = sandbox.app.account
        unsubscribed: set[str] = set()
        unsubscribed_profiles: set[str] = set()
        mailed_before = 0
        for day in range(1, 15):
            when = START + timedelta(days=day - 1)
            result = runner.invoke(
                app, ["run", str(plan_path), "--day", str(day), "--now", f"{when}T10:05"]
            )
            assert result.exit_code in (0, 1), result.output
            mailed = {m.rcpt_tos[0] for m in sink.messages[mailed_before:]}
            mailed_before = len(sink.messages)
            read_back = {
                str(e)
                for (e,) in store.conn.execute(
                    "SELECT c.email FROM outbox_rows o JOIN customers c ON c.id = o.customer_id "
                    "WHERE o.day = ? AND o.kind = 'webhook' AND o.status = 'sent' "
                    "AND json_extract(o.payload, '$.list') = 'exclusion' AND NOT EXISTS "
                    "(SELECT 1 FROM consents k WHERE k.customer_id = c.id AND k.channel = "
                    "'email' AND k.status IN ('unsubscribed', 'suppressed'))",
                    (day,),
                )
            }
            assert mailed == read_back, f"day {day}: mailed is not what was read back"
            assert not mailed & unsubscribed, f"day {day}: an unsubscribed customer was mailed"
            assert not any(not e.isascii() or ".." in e for e in mailed)
            in_list = {
                account.profiles[pid]["attributes"].get("email")
                for lid, members in account.members.items()
                if account.lists[lid]["name"] == "Warmup exclusions"
                for pid in members.seq_of
            }
            meddled = {
                account.profiles[pid]["attributes"].get("email", "").removeprefix("changed-")
                for pid in account.meddled
                if pid in account.profiles
            }
            assert mailed <= in_list | meddled, f"day {day}: mailed outside the list"
            # two of today's recipients unsubscribe in Klaviyo before the next day
            for email in sorted(mailed)[:2]:
                profile = account.profile_by("email", email)
                if profile is not None:
                    account.unsubscribe(profile)
                    unsubscribed.add(email)
                    unsubscribed_profiles.add(profile["id"])
        assert len(sink.messages) > 800
        assert account.meddled, "no other client's edit happened: the test would prove less"
        assert unsubscribed
        held = store.conn.execute(
            "SELECT count(*) FROM outbox WHERE kind = 'webhook' AND status = 'on_hold'"
        ).fetchone()[0]
        assert held, "no exclusion was refused: the test would prove less"
        # nobody who unsubscribed was subscribed again, under any email their profile has now
        assert {account.profiles[pid]["consent"] for pid in unsubscribed_profiles} == {
            "UNSUBSCRIBED"
        }
        for email in unsubscribed:
            profile = account.profile_by("email", email)
            assert profile is None or profile["consent"] != "SUBSCRIBED"
        store.close()
