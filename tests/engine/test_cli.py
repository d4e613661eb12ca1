"""`warmup run` and `warmup explain` through the CLI: exit codes, messages, JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.storefill import write_plan
from warmup.cli.app import app
from warmup.store.copy import copy_store

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def plan(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The plan over an imported store, on each engine (imported into SQLite, then copied)."""
    csv = tmp_path / "export.csv"
    assert runner.invoke(app, ["sample", "300", "--out", str(csv)]).exit_code == 0
    path = str(write_plan(tmp_path, variant=1))
    imported = runner.invoke(app, ["import", path, str(csv), "--quiet"])
    assert imported.exit_code == 0, imported.output
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_url"))
        copy_store(tmp_path / "store.db", url)
        monkeypatch.setenv("WARMUP_STORE", url)
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args], env={"COLUMNS": "100"})
    return result.exit_code, result.output


def test_day_order_refusal_is_exit_3(plan: str) -> None:
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00", "--no-dispatch")
    assert code == 3
    assert (
        "error: day 2 cannot run before day 1 has completed (day 1 is not started) — "
        f"run `warmup run {plan} --day 1` first"
    ) in out


def test_run_force_and_explain(plan: str, tmp_path: Path) -> None:
    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", "--no-dispatch")
    assert code == 0, out
    assert out.startswith("ran engine-test day 1 (2026-12-01): completed\n")
    assert "allocation: new provider 5 of limit 5 (schedule: 5)" in out
    assert "outbox: #225 +5, #email +5" in out
    code, out = run(
        plan,
        "--day",
        "3",
        "--now",
        "2026-12-03T23:00",
        "--no-dispatch",
        "--force",
        "day 2 skipped on purpose",
    )
    assert code == 0, out
    code, out = run(plan, "--day", "1", "--now", "2026-12-04T23:00", "--no-dispatch")
    assert code == 0 and "day 1's allocation was done earlier and kept as it was" in out
    from tests.support.storefill import table

    email = str(
        table(
            os.environ["WARMUP_STORE"],
            "SELECT c.email FROM journeys j JOIN customers c "
            "ON c.id = j.customer_id WHERE j.day = 1 AND j.outcome = 'klaviyo' "
            "ORDER BY j.rank LIMIT 1",
        )[0][0]
    )
    result = runner.invoke(app, ["explain", plan, "--day", "1", email])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{email} on day 1:"
    assert (
        "#limit audience · Provider limits — the new provider's share of today's schedule: "
        "limit: rank 6 > limit 5 → stays with Klaviyo"
    ) in result.output
    missing = runner.invoke(app, ["explain", plan, "--day", "1", "nobody@example.com"])
    assert missing.exit_code == 2 and "no customer nobody@example.com" in missing.output


def test_dry_run_json_document(plan: str) -> None:
    code, out = run(plan, "--day", "1", "--dry-run", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert list(doc) == [
        "plan",
        "day",
        "date",
        "dry_run",
        "status",
        "due_at",
        "already_completed",
        "funnel",
        "allocation",
        "list_changes",
        "samples",
        "webhook",
        "outbox",
        "notes",
        "klaviyo_work",
    ]
    assert doc["dry_run"] is True and doc["status"] == "completed"
    assert doc["allocation"]["new"] == 5
    assert doc["list_changes"]["added"] == 5
    # the read-back that gates the day's email: 5 recipients, one page
    assert doc["list_changes"]["read_back"] == {"requests": 1, "seconds": 0.0}
    assert [n["id"] for n in doc["funnel"]][:3] == ["229", "7", "19"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "1", "--now", "yesterday-ish"], "--now 'yesterday-ish' is not a timestamp"),
        (["--day", "15"], "day 15 is not in plan engine-test: it has days 1–14"),
    ],
)
def test_invalid_input_is_exit_2(plan: str, args: list[str], message: str) -> None:
    code, out = run(plan, *args, "--no-dispatch")
    assert code == 2
    assert message in out


def test_commands_have_help() -> None:
    for name in ("run", "explain"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "--day" in result.output


def test_a_day_with_unsent_email_blocks_the_next_one_until_run_again(plan: str) -> None:
    # A run killed mid-dispatch (or run with --no-dispatch) leaves day 1 completed with its
    # email unsent; day 2 would strand it for good, so it is refused, and status says why.
    code, out = run(plan, "--day", "1", "--now", "2026-12-01T23:00", "--no-dispatch")
    assert code == 0, out
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00")
    assert code == 3
    assert (
        "error: day 2 cannot run before day 1 has sent its email (5 not sent yet) — run "
        f'`warmup run {plan} --day 1` again to send it, or pass --force "reason" to leave it '
        "unsent"
    ) in out
    if not os.environ["WARMUP_STORE"].startswith("postgresql:"):  # status: SQLite only so far
        status = runner.invoke(app, ["status", plan], env={"COLUMNS": "100"})
        assert f"next        day 1 has 5 email(s) not sent yet: warmup run {plan} --day 1" in (
            status.output
        )
    code, out = run(plan, "--day", "2", "--now", "2026-12-02T23:00", "--no-dispatch")
    assert code == 0, out
