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


@pytest.mark.parametrize("table", ["outbox", "journeys", "customers"])
def test_postgresql_store_exports_what_sqlite_does(
    plan: str, postgres_url: str, table: str
) -> None:
    sqlite_store = os.environ["WARMUP_STORE"]
    copied = runner.invoke(app, ["store", "copy", sqlite_store, postgres_url])
    assert copied.exit_code == 0, copied.output
    for fmt in ("csv", "json"):
        args = ["export", plan, "--table", table, "--format", fmt]
        here = runner.invoke(app, args)
        there = runner.invoke(app, args, env={"WARMUP_STORE": postgres_url})
        assert here.exit_code == there.exit_code == 0, (here.output, there.output)
        assert here.stdout == there.stdout, fmt
        if fmt == "json":
            assert len(json.loads(there.stdout)) > 0
