"""`warmup sync` (with --verify) and `warmup status` take --now like `warmup run`: a rehearsal
that ran day 2 at its own clock verifies the list against that clock, not the machine's."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from warmup.app.demo import demo_plan, klaviyo_account
from warmup.app.sample import write_sample_csv
from warmup.cli.app import app
from warmup.email.sink import smtp_sink
from warmup.sandbox import SandboxConfig, serve_in_thread

runner = CliRunner()


def test_sync_verify_and_status_read_the_rehearsal_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "now-test-secret")
    monkeypatch.setenv("WARMUP_STORE", str(tmp_path / "store.db"))
    csv_path = write_sample_csv(tmp_path / "customers.csv", 200, seed=9)
    account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    with serve_in_thread(SandboxConfig(fast=True, state=account)) as sandbox, smtp_sink() as sink:
        monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
        # years ahead: the machine's clock is before day 1 ends, the rehearsal's after
        plan = demo_plan(klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=date(2031, 3, 3))
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        assert runner.invoke(app, ["import", str(plan_path), str(csv_path), "-q"]).exit_code == 0
        for day, when in ((1, "2031-03-03T10:05"), (2, "2031-03-04T10:05")):
            ran = runner.invoke(app, ["run", str(plan_path), "--day", str(day), "--now", when])
            assert ran.exit_code == 0, ran.output
        verified = runner.invoke(
            app, ["sync", str(plan_path), "--verify", "--now", "2031-03-04T10:30"]
        )
        assert verified.exit_code == 0, verified.output
        assert "exclusion list" in verified.output and "matches the store" in verified.output
        assert "missing" not in verified.output
        status = runner.invoke(
            app, ["status", str(plan_path), "--json", "--now", "2031-03-05T09:00"]
        )
        assert status.exit_code == 0, status.output
        # at the rehearsal's clock day 3's date has come (the machine's: years ahead)
        assert json.loads(status.output)["next"].startswith("day 3 is due")
