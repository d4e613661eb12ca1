"""`warmup export`: a store table as CSV or JSON, row for row what the store holds."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.storefill import write_plan
from warmup.cli.app import app

runner = CliRunner()


@pytest.fixture
def plan(tmp_path: Path) -> str:
    """A plan whose day 1 has run: journeys and outbox rows to export."""
    sample = tmp_path / "export.csv"
    assert runner.invoke(app, ["sample", "300", "--out", str(sample)]).exit_code == 0
    path = str(write_plan(tmp_path, variant=1))
    imported = runner.invoke(app, ["import", path, str(sample), "--quiet"])
    assert imported.exit_code == 0, imported.output
    ran = runner.invoke(
        app, ["run", path, "--day", "1", "--now", "2026-12-01T23:00", "--no-dispatch"]
    )
    assert ran.exit_code == 0, ran.output
    return path


def stored(table: str) -> list[dict[str, object]]:
    with sqlite3.connect(os.environ["WARMUP_STORE"]) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table}")]


def test_outbox_as_csv_holds_every_row_and_column(plan: str) -> None:
    result = runner.invoke(app, ["export", plan, "--table", "outbox"])
    assert result.exit_code == 0, result.output
    # the view puts back the payload a day's rows share (an audit sees it on every row)
    expected = stored("outbox_rows")
    assert len(expected) == 10  # day 1: 5 webhook and 5 email rows
    assert all(row["payload"].startswith("{") for row in expected)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(expected[0])
    by_key = {row["key"]: row for row in rows}
    assert set(by_key) == {str(row["key"]) for row in expected}
    for row in expected:
        assert by_key[str(row["key"])] == {k: "" if v is None else str(v) for k, v in row.items()}
    assert "exported 10 outbox row(s)" in result.stderr


def test_journeys_as_json_to_a_file(plan: str, tmp_path: Path) -> None:
    out = tmp_path / "journeys.json"
    result = runner.invoke(
        app, ["export", plan, "--table", "journeys", "--format", "json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text(encoding="utf-8"))
    expected = stored("journeys")
    assert expected and sorted(map(json.dumps, exported)) == sorted(map(json.dumps, expected))


def test_empty_table_is_a_valid_document(plan: str) -> None:
    result = runner.invoke(app, ["export", plan, "--table", "events", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--table", "locks"], "--table 'locks' is not a table warmup exports"),
        (["--table", "outbox", "--format", "xml"], "--format 'xml' is not a format"),
        (["--table", "outbox", "-o", "/nonexistent/dir/x.csv"], "cannot write /nonexistent"),
    ],
)
def test_bad_input_is_exit_2_with_what_to_change(plan: str, args: list[str], says: str) -> None:
    result = runner.invoke(app, ["export", plan, *args])
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_output_onto_the_plans_own_store_is_refused(plan: str, suffix: str) -> None:
    store = Path(os.environ["WARMUP_STORE"])
    before = stored("outbox")
    target = Path(f"{store}{suffix}")
    result = runner.invoke(app, ["export", plan, "--table", "outbox", "--output", str(target)])
    assert result.exit_code == 2, result.output
    assert "the plan's store" in result.output and "Traceback" not in result.output
    # SQLite removes its side files when the last connection closes: absent, or not our CSV
    header = ",".join(before[0]).encode()
    assert not target.exists() or header not in target.read_bytes()
    assert stored("outbox") == before  # the store still opens and holds every row


def test_output_onto_the_plan_file_is_refused(plan: str) -> None:
    text = Path(plan).read_text(encoding="utf-8")
    # another spelling of the same file must not slip through
    other = Path(plan).parent / "." / Path(plan).name
    result = runner.invoke(app, ["export", plan, "--table", "outbox", "-o", str(other)])
    assert result.exit_code == 2, result.output
    assert "the plan file" in result.output
    assert Path(plan).read_text(encoding="utf-8") == text


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_write_failure_names_the_file(plan: str) -> None:
    result = runner.invoke(app, ["export", plan, "--table", "outbox", "-o", "/dev/full"])
    assert result.exit_code == 1, result.output
    assert "writing /dev/full failed" in result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output
