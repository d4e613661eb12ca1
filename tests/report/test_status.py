from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.dayfill import add_customers, add_day, open_for
from warmup.cli import app
from warmup.plan import LoadedPlan, load_plan
from warmup.report.status import plan_status, render_table
from warmup.store import events

runner = CliRunner()
BEFORE = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def loaded(example_plan: Path) -> LoadedPlan:
    return load_plan(example_plan)


def test_fresh_store_lists_the_planned_calendar(loaded: LoadedPlan) -> None:
    open_for(loaded.store_path).close()
    status = plan_status(loaded, now=BEFORE)
    assert [d.date for d in status.days][:3] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert {d.status for d in status.days} == {"planned"}
    assert (status.guardrail.action, status.guardrail.day) == ("proceed", 1)
    assert status.next_action == (
        "day 1 can run after 2026-12-01 00:00 +01:00 Europe/Prague (mails at 10:00 +01:00): "
        f"warmup run {loaded.path} --day 1"
    )


def test_a_day_held_back_moves_the_later_dates(loaded: LoadedPlan) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 4)
    add_day(store, 1, "2026-12-01", status="completed", new=ids[:2], klaviyo=ids[2:])
    with store.transaction() as conn:
        conn.execute("UPDATE days SET completed_at = '2026-12-03T09:00:00+00:00'")
    store.close()
    status = plan_status(loaded, now=BEFORE)
    assert [d.date for d in status.days][:3] == ["2026-12-01", "2026-12-04", "2026-12-05"]


def test_figures_rates_and_hold(loaded: LoadedPlan) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 400)
    add_day(
        store,
        1,
        "2026-12-01",
        status="completed",
        new=ids[:300],
        klaviyo=ids[300:],
        email_status={"bounced": 7, "sent": 290, "pending": 2, "failed": 1},
        webhook_status={"sent": 298, "pending": 2},
        events={"hard_bounced": 7, "complained": 0, "unsubscribed": 3},
    )
    store.close()
    status = plan_status(loaded, now=BEFORE)
    day1 = status.days[0]
    assert (day1.new_allocated, day1.klaviyo_allocated) == (300, 100)
    assert day1.new_sent == 297
    assert day1.mail is not None
    # the same 7 customers bounced at send time and as events: counted once
    assert day1.mail.hard_bounced == 7
    assert (day1.emails.pending, day1.emails.failed, day1.emails.uncertain) == (2, 8, 0)
    assert day1.list_sync.pending == 2
    assert (status.guardrail.action, status.guardrail.day) == ("hold", 2)
    text = render_table(status)
    assert "2.36%" in text  # 7 / 297 sent
    assert "1.03%" in text  # 3 / 290 delivered
    assert "guardrail   hold for day 2\n" in text
    # day 1 completed with 2 emails unsent (behind their pending list rows): finish it first
    assert "next        day 1 has 2 email(s) not sent yet: warmup run" in text


def test_uncertain_mail_comes_first(loaded: LoadedPlan) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 10)
    add_day(
        store,
        1,
        "2026-12-01",
        status="waiting",
        new=ids[:5],
        klaviyo=ids[5:],
        email_status={"sent": 3, "uncertain": 2},
    )
    store.close()
    status = plan_status(loaded, now=BEFORE)
    assert status.email_backlog["uncertain"] == 2
    assert status.next_action.startswith("2 email(s) are uncertain")


def test_waiting_day_names_its_due_time(loaded: LoadedPlan) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 10)
    add_day(store, 1, "2026-12-01", status="completed", new=ids[:5], klaviyo=ids[5:])
    add_day(
        store,
        2,
        "2026-12-02",
        status="waiting",
        new=[],
        klaviyo=[],
        paths={("229", "7", "19", "40", "limit", "225", "256"): ids[:5]},
        due_at="2026-12-02T09:00:00+00:00",
    )
    store.close()
    now = datetime(2026, 12, 2, 6, tzinfo=UTC)
    assert plan_status(loaded, now=now).next_action == (
        f"day 2 can continue after 2026-12-02 10:00 +01:00 Europe/Prague: warmup run {loaded.path} "
        "--day 2"
    )


def test_status_json_is_stable(loaded: LoadedPlan, example_plan: Path) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 10)
    add_day(store, 1, "2026-12-01", status="completed", new=ids[:5], klaviyo=ids[5:])
    store.close()
    result = runner.invoke(app, ["status", str(example_plan), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert sorted(data) == [
        "clock_changes",
        "days",
        "email_backlog",
        "guardrail",
        "list_sync_backlog",
        "next",
        "oldest_unsubscribe_seconds",
        "plan",
        "store",
        "timezone",
        "unsubscribes_waiting",
        "version",
    ]
    assert data["version"] == 1
    assert sorted(data["days"][0]) == [
        "date",
        "day",
        "emails",
        "figures",
        "klaviyo_allocated",
        "list_sync",
        "new_allocated",
        "new_estimate",
        "new_limit",
        "new_sent",
        "new_setting",
        "send_time",
        "status",
        "template",
    ]
    assert data["days"][0]["new_sent"] == 5
    assert data["days"][0]["figures"]["hard_bounce_rate"] == 0.0
    assert data["days"][1]["figures"] is None
    # day 1 ran with 10 eligible: day 8's "10%" is estimated at 1, day 14's "all" at 10
    assert (data["days"][0]["new_estimate"], data["days"][7]["new_estimate"]) == (None, 1)
    assert data["days"][13]["new_estimate"] == 10
    assert data["email_backlog"]["sent"] == 5
    assert data["list_sync_backlog"]["sent"] == 5
    assert data["guardrail"]["action"] == "proceed"
    assert (data["unsubscribes_waiting"], data["oldest_unsubscribe_seconds"]) == (0, None)


def test_status_shows_unsubscribes_waiting_and_the_oldest_age(
    loaded: LoadedPlan, example_plan: Path
) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 3)
    at = "2026-01-01T09:00:00+00:00"
    with store.transaction() as conn:
        events.insert(conn, events.Event("new", "e1", "unsubscribed", ids[0], "x", None, at, at))
    store.close()
    result = runner.invoke(app, ["status", str(example_plan), "--json"])
    data = json.loads(result.output)
    assert data["unsubscribes_waiting"] == 1
    assert data["oldest_unsubscribe_seconds"] > 0
    table = runner.invoke(app, ["status", str(example_plan)]).output
    assert "unsubscribes waiting for Klaviyo: 1 (oldest " in table


def test_status_without_a_store_says_to_import(example_plan: Path) -> None:
    result = runner.invoke(app, ["status", str(example_plan)])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "warmup import" in result.output


def test_a_failed_run_says_so_and_what_to_do(tmp_path: Path) -> None:
    """A real run that fails (no Klaviyo key) marks the day failed, and status says run again."""
    import shutil

    from warmup.app.sample import write_sample_csv
    from warmup.errors import InvalidInput
    from warmup.importer import import_csv

    plan = tmp_path / "plan.yaml"
    shutil.copy(Path(__file__).parents[2] / "plans" / "example.yaml", plan)
    text = plan.read_text().replace("../scenarios/variant-1.yaml", "variant-1")
    plan.write_text(text.replace("templates: ../templates\n", ""))
    here = load_plan(plan)
    import_csv(here, write_sample_csv(tmp_path / "c.csv", 50))
    from warmup.app.day import run_and_dispatch

    with pytest.raises(InvalidInput, match="KLAVIYO_API_KEY"):
        run_and_dispatch(here, 1, now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    status = plan_status(here, now=BEFORE)
    assert status.days[0].status == "failed"
    assert status.next_action.startswith("day 1's last run failed")


def test_an_interrupted_run_is_told_apart_from_a_live_one(loaded: LoadedPlan) -> None:
    import socket
    import subprocess
    import sys

    store = open_for(loaded.store_path)
    ids = add_customers(store, 4)
    add_day(store, 1, "2026-12-01", status="running", new=ids[:2], klaviyo=ids[2:])
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO locks VALUES ('run', ?, ?, 'now')", (live.pid, socket.gethostname())
            )
        assert plan_status(loaded, now=BEFORE).next_action.startswith("day 1 is running")
    finally:
        live.kill()
        live.wait()
    # the holder was SIGKILLed: its lock row is stale
    assert plan_status(loaded, now=BEFORE).next_action.startswith(
        "day 1's last run was interrupted; run it again"
    )
    store.close()
