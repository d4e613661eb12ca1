"""A list deleted in Klaviyo mid warm-up: `warmup run` exits 1 and says how to recover, `status`
does not recommend the same failing run, and `sync --resolve-lists` finds the list by name again
(the sandbox creates it anew), after which the day finishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.dispatch.klaviyo.klaviyo_helpers import write_plan
from warmup.app.sample import write_sample_csv
from warmup.cli.app import app
from warmup.sandbox import RunningSandbox

runner = CliRunner()
EXCLUSIONS = "Warmup exclusions"


def _file_provider(plan: Path) -> None:
    text = plan.read_text()
    start, end = text.index("  new:\n"), text.index("  klaviyo:\n")
    plan.write_text(text[:start] + "  new: {kind: file, directory: eml}\n" + text[end:])


def _exclusion_lists(sandbox: RunningSandbox) -> list[str]:
    return [lid for lid, r in sandbox.app.account.lists.items() if r["name"] == EXCLUSIONS]


def test_a_deleted_list_fails_the_run_and_resolve_lists_recovers(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    plan = str(loaded.path)
    _file_provider(loaded.path)
    csv_path = write_sample_csv(tmp_path / "customers.csv", 150, seed=3)
    assert runner.invoke(app, ["import", plan, str(csv_path)]).exit_code == 0
    for day in (1, 2):
        ran = runner.invoke(
            app, ["run", plan, "--day", f"{day}", "--now", f"2026-12-0{day}T10:05", "--json"]
        )
        assert ran.exit_code == 0, ran.output
        # a real run's JSON carries what was sent, not only what the engine decided
        document = json.loads(ran.stdout)
        assert document["day"] == day and document["dispatch"]["email"]["sent"] == 50
    [old] = _exclusion_lists(sandbox)
    del sandbox.app.account.lists[old]  # someone deleted it in Klaviyo
    sandbox.app.account.members.pop(old, None)

    # day 3 adds 50 customers to the 50 of days 1-2: their changes reach the deleted list
    second = runner.invoke(app, ["run", plan, "--day", "3", "--now", "2026-12-03T10:05"])
    assert second.exit_code == 1, second.output
    assert "failed" in second.output and "--resolve-lists" in second.output
    # nobody can be read back from a deleted list, so nobody of day 3 is mailed yet
    assert "email    0 sent" in second.output and "Traceback" not in second.output

    # run again (a cron job would): the failed changes are not retried and still fail the run
    third = runner.invoke(app, ["run", plan, "--day", "3", "--now", "2026-12-03T10:07"])
    assert third.exit_code == 1, third.output
    assert "failed in an earlier run" in third.output and "--resolve-lists" in third.output

    status = runner.invoke(app, ["status", plan, "--json"])
    assert "warmup sync" in status.output and "--resolve-lists" in status.output
    table = runner.invoke(app, ["status", plan])
    day3 = next(line for line in table.output.splitlines() if "2026-12-03" in line)
    assert "sending" in day3 and "completed" not in day3, table.output

    synced = runner.invoke(
        app, ["sync", plan, "--day", "3", "--resolve-lists", "--now", "2026-12-03T10:05"]
    )
    assert synced.exit_code == 0, synced.output
    assert f"forgot id {old}" in synced.output
    [new] = _exclusion_lists(sandbox)
    assert new != old

    # the new list holds exactly day 3's customers, and the day's email goes out
    assert len(sandbox.app.account.members[new].seq_of) == 100
    again = runner.invoke(app, ["run", plan, "--day", "3", "--now", "2026-12-03T10:06"])
    assert again.exit_code == 0, again.output
    # all 100 of day 3 (50 new, 50 from days 1-2), now read back from the new list
    assert "email    100 sent" in again.output, again.output


def test_a_store_moved_to_postgresql_mid_ramp_recovers_a_deleted_list_there(
    tmp_path: Path, sandbox: RunningSandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days 1–3 ran on SQLite (day 3 failed: its list was deleted in Klaviyo); the store is
    copied to PostgreSQL, and there `status`, `sync --resolve-lists` and `sync --verify` finish
    the Klaviyo side: the list claims follow the plan to its new store."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    plan = str(loaded.path)
    _file_provider(loaded.path)
    csv_path = write_sample_csv(tmp_path / "customers.csv", 150, seed=3)
    assert runner.invoke(app, ["import", plan, str(csv_path)]).exit_code == 0
    for day in (1, 2):
        ran = runner.invoke(app, ["run", plan, "--day", f"{day}", "--now", f"2026-12-0{day}T10:05"])
        assert ran.exit_code == 0, ran.output
    [old] = _exclusion_lists(sandbox)
    del sandbox.app.account.lists[old]
    sandbox.app.account.members.pop(old, None)
    failed = runner.invoke(app, ["run", plan, "--day", "3", "--now", "2026-12-03T10:05"])
    assert failed.exit_code == 1, failed.output

    copied = runner.invoke(app, ["store", "copy", str(loaded.store_path), postgres_url])
    assert copied.exit_code == 0, copied.output
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    status = runner.invoke(app, ["status", plan, "--json"])
    assert status.exit_code == 0 and "--resolve-lists" in status.output, status.output
    synced = runner.invoke(
        app, ["sync", plan, "--day", "3", "--resolve-lists", "--now", "2026-12-03T10:05"]
    )
    assert synced.exit_code == 0, synced.output
    assert f"forgot id {old}" in synced.output
    [new] = _exclusion_lists(sandbox)
    assert len(sandbox.app.account.members[new].seq_of) == 100
    verified = runner.invoke(app, ["sync", plan, "--day", "3", "--verify"])
    assert verified.exit_code == 0 and "matches the store" in verified.output, verified.output
