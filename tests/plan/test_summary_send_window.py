"""`warmup validate` names the send window beside the send time, so a team sees that the day's
mail is spread (and how) before the first run; it was left out of the summary."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.support.plans import write_plan
from warmup.cli import app

runner = CliRunner()


def test_the_summary_shows_the_send_window(tmp_path: Path) -> None:
    window = {"start": "10:00", "end": "16:00", "shape": "hourly_ramp"}
    plan = write_plan(tmp_path, settings={"schedule": {"send_window": window}})
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert "mail spread 10:00–16:00 (hourly_ramp)" in result.output


def test_without_a_window_the_summary_says_nothing_of_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(write_plan(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "spread" not in result.output
