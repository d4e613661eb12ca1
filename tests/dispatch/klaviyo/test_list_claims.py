"""Lists belong to one plan: every command that writes to a Klaviyo list refuses one another
plan's store has claimed (exit 3, before anything is written), and with --claim a cut-back
still never removes the members the other plan added. Real sandbox over HTTP, real stores."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.dispatch.klaviyo.klaviyo_helpers import add_customers, fast_client, plan_day, write_plan
from warmup.app.demo import demo_plan, klaviyo_account
from warmup.app.sample import write_sample_csv
from warmup.cli.app import app
from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.email.sink import smtp_sink
from warmup.errors import Refused
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.store import open_store

runner = CliRunner()


def _members(sandbox: RunningSandbox, list_id: str) -> set[str]:
    account = sandbox.app.account
    return {account.profiles[p]["attributes"]["email"] for p in account.members[list_id].seq_of}


def test_run_and_sync_refuse_a_list_another_plan_claimed_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "claims-test-secret")
    monkeypatch.delenv("WARMUP_STORE")
    csv_path = write_sample_csv(tmp_path / "customers.csv", 120, seed=3)
    account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    with serve_in_thread(SandboxConfig(fast=True, state=account)) as sandbox, smtp_sink() as sink:
        monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
        paths = {}
        for name in ("pa", "pb"):
            plan = demo_plan(
                klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=date(2026, 12, 1)
            )
            plan.update(name=name, store=f"{name}.db")
            plan["providers"]["klaviyo"]["exclusion_list"] = {"name": "Shared list"}
            plan["providers"]["klaviyo"]["unsubscribe_list"] = {"name": f"Unsub {name}"}
            paths[name] = tmp_path / f"{name}.yaml"
            paths[name].write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
            imported = runner.invoke(app, ["import", str(paths[name]), str(csv_path), "-q"])
            assert imported.exit_code == 0, imported.output
        day1 = ["--day", "1", "--now", "2026-12-01T10:05"]
        first = runner.invoke(app, ["run", str(paths["pa"]), *day1])
        assert first.exit_code == 0, first.output
        (list_id,) = [
            lid for lid, r in sandbox.app.account.lists.items() if r["name"] == "Shared list"
        ]
        held = _members(sandbox, list_id)
        assert held
        mailed = len(sink.messages)

        refused = runner.invoke(app, ["run", str(paths["pb"]), *day1])
        assert refused.exit_code == 3, refused.output
        assert f"Klaviyo list {list_id} belongs to plan 'pa'" in refused.output
        assert "--claim" in refused.output and "Traceback" not in refused.output
        store_b = open_store(tmp_path / "pb.db")
        # refused before the day wrote anything: no day, no outbox, no list change, no mail
        assert store_b.conn.execute("SELECT count(*) FROM days").fetchone()[0] == 0
        assert store_b.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert _members(sandbox, list_id) == held and len(sink.messages) == mailed
        store_b.close()
        synced = runner.invoke(app, ["sync", str(paths["pa"])])
        assert synced.exit_code == 0, synced.output

        taken = runner.invoke(app, ["run", str(paths["pb"]), *day1, "--claim"])
        assert taken.exit_code == 0, taken.output
        # now pa is the other plan: its own writes are refused until it claims back
        again = runner.invoke(app, ["sync", str(paths["pa"])])
        assert again.exit_code == 3 and "belongs to plan 'pb'" in again.output


def test_a_cut_back_never_removes_members_another_plan_added(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    """pa and pb share customers and a list; pb claims it; pb's day 2 no longer has c1, but pa
    added c1 (pa mails it today): c1 stays in the list. pa's store on either engine: a claim
    names a PostgreSQL store by its URL and its members are read from there."""
    client = fast_client(sandbox.base_url, sandbox.api_key)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plan_a = write_plan(tmp_path / "a", sandbox.base_url, exclusion='{name: "Shared list"}')
    plan_b = write_plan(tmp_path / "b", sandbox.base_url, exclusion='{name: "Shared list"}')
    store_a, store_b = open_store(store_location), open_store(tmp_path / "b.db")
    people = add_customers(store_a, 4)
    add_customers(store_b, 4)
    plan_day(store_a, 1, people[:1], people)  # pa: c1 today
    list_id = drain_klaviyo(plan_a, store_a, 1, client=client).lists["exclusion"]
    plan_day(store_b, 1, people[:2], people)  # pb: c1, c2 on its day 1
    with pytest.raises(Refused):
        drain_klaviyo(plan_b, store_b, 1, client=client)
    assert _members(sandbox, list_id) == {"c1@example.com"}
    drain_klaviyo(plan_b, store_b, 1, client=client, claim=True)
    assert _members(sandbox, list_id) == {"c1@example.com", "c2@example.com"}
    plan_day(store_b, 2, people[2:3], people)  # pb's day 2: c3 only; day 1 (2020) is over
    report = drain_klaviyo(plan_b, store_b, 2, client=client)
    # c2 was pb's alone and goes; c1 pa added, so it stays whoever cuts the list
    assert _members(sandbox, list_id) == {"c1@example.com", "c3@example.com"}
    assert report.removed == 1
    store_a.close()
    store_b.close()
