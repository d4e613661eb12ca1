"""A store copied SQLite → PostgreSQL tells the same story: `warmup status` (table and JSON),
`warmup report` and `warmup export` print the same on both engines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.report.test_report import two_days
from warmup.cli import app
from warmup.plan import load_plan

runner = CliRunner()
EXPORTED = ("outbox", "journeys", "days", "events", "allocations")


def _outputs(plan: Path, out: Path, store: str, now: str) -> dict[str, Any]:
    # one clock for both engines' status: ages ("oldest 14 h 13 min ago") are measured from it
    status = runner.invoke(app, ["status", str(plan), "--json", "--now", now])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    data.pop("store")  # where the store is: the one thing meant to differ
    table = runner.invoke(app, ["status", str(plan), "--now", now])
    assert table.exit_code == 0, table.output
    # at one --now: ages in the page ("14 h 13 min") moved on between the two engines' calls
    report = runner.invoke(app, ["report", str(plan), "--html", str(out / "r.html"), "--now", now])
    assert report.exit_code == 0, report.output
    html = (out / "r.html").read_text().replace(store, "STORE")
    exported = {}
    for table_name in EXPORTED:
        result = runner.invoke(
            app, ["export", str(plan), "--table", table_name, "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        exported[table_name] = result.stdout
    return {
        "json": data,
        "table": [line for line in table.output.splitlines() if store not in line],
        "report": html,
        "export": exported,
    }


def test_status_report_and_export_of_a_copied_store_match_the_original(
    example_plan: Path, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_plan(example_plan)
    two_days(loaded)
    sqlite_out, pg_out = tmp_path / "sqlite", tmp_path / "pg"
    sqlite_out.mkdir()
    pg_out.mkdir()
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    on_sqlite = _outputs(example_plan, sqlite_out, str(loaded.store_path), now)

    copied = runner.invoke(app, ["store", "copy", str(loaded.store_path), postgres_url])
    assert copied.exit_code == 0, copied.output
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    on_postgres = _outputs(example_plan, pg_out, postgres_url, now)

    assert on_postgres["json"] == on_sqlite["json"]
    assert on_postgres["table"] == on_sqlite["table"]
    assert on_postgres["report"] == on_sqlite["report"]
    assert on_postgres["export"] == on_sqlite["export"]
    # not vacuous: both told of the days that ran, their mail and their funnel
    assert on_sqlite["json"]["days"][0]["new_sent"] == 300
    assert "Funnel of day 2" in on_sqlite["report"]
