"""`warmup export` reads through the store's backend seam: a store copied to PostgreSQL exports
the same CSV and JSON, byte for byte, as the SQLite store it was copied from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.storefill import write_plan
from warmup.cli.app import app

runner = CliRunner()


@pytest.fixture
def plan(tmp_path: Path) -> str:
    """A plan whose day 1 has run on SQLite: journeys and outbox rows to export."""
    sample = tmp_path / "export.csv"
    assert runner.invoke(app, ["sample", "300", "--out", str(sample)]).exit_code == 0
    path = str(write_plan(tmp_path, variant=1))
    assert runner.invoke(app, ["import", path, str(sample), "--quiet"]).exit_code == 0
    ran = runner.invoke(
        app, ["run", path, "--day", "1", "--now", "2026-12-01T23:00", "--no-dispatch"]
    )
    assert ran.exit_code == 0, ran.output
    return path


def copy_to(postgres_url: str) -> str:
    """Copy the test's SQLite store (the plan's, run by the fixture) to ``postgres_url``."""
    sqlite_store = os.environ["WARMUP_STORE"]
    copied = runner.invoke(app, ["store", "copy", sqlite_store, postgres_url])
    assert copied.exit_code == 0, copied.output
    return sqlite_store


@pytest.mark.parametrize("table", ["outbox", "journeys", "customers"])
def test_postgresql_store_exports_what_sqlite_does(
    plan: str, postgres_url: str, table: str
) -> None:
    copy_to(postgres_url)
    for fmt in ("csv", "json"):
        args = ["export", plan, "--table", table, "--format", fmt]
        here = runner.invoke(app, args)
        there = runner.invoke(app, args, env={"WARMUP_STORE": postgres_url})
        assert here.exit_code == there.exit_code == 0, (here.output, there.output)
        assert here.stdout == there.stdout, fmt
        if fmt == "json":
            assert len(json.loads(there.stdout)) > 0


def test_an_import_merging_duplicates_exports_the_same_on_both_engines(
    tmp_path: Path, postgres_url: str
) -> None:
    # A duplicate row merges its free cells into the first one's (an upsert round); PostgreSQL's
    # json_agg wrote that array as `["a", "b"]`, SQLite's json_group_array as `["a","b"]`, so
    # the customers' export differed between engines for the same file.
    export = tmp_path / "dupes.csv"
    export.write_text(
        "Email,First Name,Colour,Size\n"
        "ann@example.com,Ann,blue,\n"
        "ANN@example.com,Ann,,M\n"
        'bob@example.com,Bob,"say ""hi""",L\n',
        encoding="utf-8",
    )
    plan = str(write_plan(tmp_path, variant=1))
    exports = []
    for store in (os.environ["WARMUP_STORE"], postgres_url):
        env = {"WARMUP_STORE": store}
        imported = runner.invoke(app, ["import", plan, str(export), "--quiet"], env=env)
        assert imported.exit_code == 0, imported.output
        args = ["export", plan, "--table", "customers", "--format", "json"]
        exported = runner.invoke(app, args, env=env)
        assert exported.exit_code == 0, exported.output
        exports.append(
            {row["email"]: row["attribute_values"] for row in json.loads(exported.stdout)}
        )
    assert exports[0] == exports[1]
    assert json.loads(exports[0]["ann@example.com"]) == ["blue", "M"]


def test_an_event_flows_outbox_rows_export_the_same_on_both_engines(
    plan: str, postgres_url: str, tmp_path: Path
) -> None:
    # An event's webhook row keeps its own payload, built in SQL: PostgreSQL's json_build_object
    # wrote it as `{"list" : "unsubscribe", ...}`, SQLite's json_object as `{"list":"unsubscribe"`.
    sqlite_store = copy_to(postgres_url)
    customers = runner.invoke(app, ["export", plan, "--table", "customers", "--format", "json"])
    emails = [row["email"] for row in json.loads(customers.stdout)[:2]]
    events = tmp_path / "events.csv"
    events.write_text(
        "event_id,type,email,occurred_at\n"
        f"e1,unsubscribed,{emails[0]},2026-12-01T12:00:00Z\n"
        f"e2,complained,{emails[1]},2026-12-01T12:30:00Z\n",
        encoding="utf-8",
    )
    exports = []
    for store in (sqlite_store, postgres_url):
        env = {"WARMUP_STORE": store}
        imported = runner.invoke(app, ["events", "import", plan, str(events)], env=env)
        assert imported.exit_code == 0, imported.output
        exported = runner.invoke(
            app, ["export", plan, "--table", "outbox", "--format", "json"], env=env
        )
        assert exported.exit_code == 0, exported.output
        rows = json.loads(exported.stdout)
        exports.append({row["key"]: row["payload"] for row in rows if ":event:" in row["key"]})
    assert len(exports[0]) == 2
    assert exports[0] == exports[1]
    assert json.loads(next(iter(exports[0].values())))["email"] in emails
