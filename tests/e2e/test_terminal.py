"""The CLI on a terminal: a real import and real days (progress bars drawn), Ctrl-C → 130, and
the demo. Before, every real run on a terminal exited 1 after its work was done."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.e2e.e2e_peers import Peers
from tests.e2e.terminal import run_in_terminal
from warmup.app.demo import demo_plan

SECRET = "terminal-unsubscribe-secret"


def _plan(folder: Path, peers: Peers) -> Path:
    from datetime import date

    plan = demo_plan(
        klaviyo_url=peers.klaviyo_url, smtp_port=peers.smtp_port, start=date(2026, 12, 1)
    )
    plan["store"] = str(folder / "store.db")
    plan["providers"]["klaviyo"]["api_key_env"] = "E2E_KLAVIYO_KEY"
    # day 2 is slow on purpose (40 messages a second): Ctrl-C lands amid its sending
    plan["providers"]["new"].update(max_connections=2, rate_per_second=40)
    plan["schedule"]["days"] = [
        {"day": 1, "new": 60, "template": "day-01"},
        {"day": 2, "new": 1500, "template": "day-02"},
    ]
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def _unexpected(output: str) -> bool:
    return "unexpected" in output or "Traceback" in output


@pytest.mark.slow
def test_import_and_real_days_on_a_terminal_and_ctrl_c(tmp_path: Path, peers: Peers) -> None:
    plan = _plan(tmp_path, peers)
    env = {
        **os.environ,
        "E2E_KLAVIYO_KEY": peers.klaviyo_key,
        "WARMUP_UNSUBSCRIBE_SECRET": SECRET,
        "TERM": "xterm-256color",
    }
    env.pop("WARMUP_STORE", None)

    imported = run_in_terminal(["import", str(plan), str(peers.customers_csv)], env)
    assert imported.code == 0, imported.output
    assert "loaded" in imported.output and not _unexpected(imported.output)

    day1 = run_in_terminal(["run", str(plan), "--day", "1", "--now", "2026-12-01T10:05"], env)
    assert day1.code == 0, day1.output
    assert not _unexpected(day1.output), day1.output
    # the final summary survives the progress bar
    assert "email " in day1.output and "60 sent" in day1.output, day1.output

    day2 = run_in_terminal(
        ["run", str(plan), "--day", "2", "--now", "2026-12-02T10:05"],
        env,
        interrupt_after="day 2 dispatch",
    )
    assert day2.code == 130, day2.output
    assert "interrupted" in day2.output and not _unexpected(day2.output), day2.output
    conn = sqlite3.connect(tmp_path / "store.db")
    try:
        sent = conn.execute(
            "SELECT count(*) FROM outbox WHERE day = 2 AND kind = 'email' AND status = 'sent'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert sent < 1500  # it stopped amid the day


@pytest.mark.slow
def test_demo_on_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("WARMUP_STORE", None)
    demo = run_in_terminal(
        ["demo", "--dir", str(tmp_path / "demo"), "--customers", "300", "--days", "1"], env
    )
    assert demo.code == 0, demo.output
    assert not _unexpected(demo.output), demo.output
    lines = demo.output.replace("\r\n", "\n").split("\n")
    steps = [line for line in lines if line.lstrip("\r").startswith(("workspace", "sandbox"))]
    glued = [line for line in lines if "━" in line and ("workspace" in line or "sandbox" in line)]
    assert len(steps) == 2 and not glued, "step lines glued into the progress bar: " + repr(glued)
    assert "report:" in demo.output
