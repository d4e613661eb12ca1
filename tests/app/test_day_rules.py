"""The rules of a day live in one place (warmup.app.day): a dry run reports the gates a real run
refuses at, with the same words, and changes nothing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.storefill import write_plan
from warmup.cli.app import app
from warmup.dispatch import claims
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture
def plan(tmp_path: Path) -> str:
    csv = tmp_path / "export.csv"
    assert runner.invoke(app, ["sample", "300", "--out", str(csv)]).exit_code == 0
    path = str(write_plan(tmp_path, variant=1))
    imported = runner.invoke(app, ["import", path, str(csv), "--quiet"])
    assert imported.exit_code == 0, imported.output
    return path


def run(*args: str, key: bool = False) -> tuple[int, str]:
    # a key lets the real run reach its claim check (the list id is known: no call is made)
    env = {"COLUMNS": "100", **({"KLAVIYO_API_KEY": "test-key"} if key else {})}
    result = runner.invoke(app, ["run", *args], env=env)
    return result.exit_code, result.output


def outbox_rows() -> int:
    with sqlite3.connect(os.environ["WARMUP_STORE"]) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_dry_run_reports_an_earlier_days_unsent_email_a_real_run_refuses(plan: str) -> None:
    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", "--no-dispatch")
    assert code == 0, out
    before = outbox_rows()
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00", "--dry-run")
    assert code == 0, out
    assert (
        "day 2 cannot run before day 1 has sent its email (5 not sent yet); a real run would "
        "be refused"
    ) in out
    assert outbox_rows() == before  # the dry run wrote nothing
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00")
    assert code == 3
    assert "day 2 cannot run before day 1 has sent its email (5 not sent yet)" in out
    # --force leaves day 1's email unsent on purpose: the real run would go on, so the dry run
    # does not say it would be refused
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00", "--dry-run", "--force", "x")
    assert code == 0 and "has sent its email" not in out, out


def test_dry_run_reports_a_list_another_plan_claimed(plan: str, tmp_path: Path) -> None:
    store = open_store(os.environ["WARMUP_STORE"], create=False)
    try:  # the store found the exclusion list by its name on an earlier run
        store.db["klaviyo_lists"].insert(
            {
                "ref": "exclusion:Warmup exclusions",
                "name": "Warmup exclusions",
                "list_id": "LIST1",
                "created": 0,
                "resolved_at": "2026-11-30T09:00:00+00:00",
            }
        )
    finally:
        store.close()
    other = tmp_path / "other.db"
    other.touch()
    claims.check("LIST1", "other-plan", other, take_over=False)

    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", "--dry-run")
    assert code == 0, out
    assert (
        f"Klaviyo list LIST1 belongs to plan 'other-plan' (store {other.resolve()}); a real "
        "run would be refused (pass --claim to take it over knowingly)"
    ) in out
    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", "--dry-run", "--claim")
    assert code == 0 and "belongs to plan" not in out, out
    # the real run refuses the same list, before the day writes anything
    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", key=True)
    assert code == 3, out
    assert "Klaviyo list LIST1 belongs to plan 'other-plan'" in out
    assert outbox_rows() == 0
