"""`warmup sync` and `warmup sandbox` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.dispatch.klaviyo.klaviyo_helpers import add_customers, plan_day, write_plan
from warmup.cli.app import app
from warmup.sandbox import RunningSandbox
from warmup.store import open_store

runner = CliRunner()


def test_sync_verify_reports_and_repair_fixes(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_STORE", store_location)
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(loaded.store_path)
    everyone = add_customers(store, 12)
    plan_day(store, 1, everyone[:6], everyone)
    store.close()

    first = runner.invoke(app, ["sync", str(loaded.path), "--verify"])
    assert first.exit_code == 0, first.output
    assert "day 1: 6 confirmed by Klaviyo" in first.output
    list_id = next(
        lid for lid, r in sandbox.app.account.lists.items() if r["name"] == "Warmup exclusions"
    )
    assert f"exclusion list {list_id}: 6 in Klaviyo, 6 expected — matches the store" in (
        first.output
    )

    sandbox.app.account.remove_members(
        list_id, list(sandbox.app.account.members[list_id].seq_of)[:2]
    )
    drifted = runner.invoke(app, ["sync", str(loaded.path), "--verify"])
    assert drifted.exit_code == 1
    assert "2 missing, 0 extra" in drifted.output
    repaired = runner.invoke(app, ["sync", str(loaded.path), "--repair"])
    assert "(repaired)" in repaired.output
    again = runner.invoke(app, ["sync", str(loaded.path), "--verify"])
    assert again.exit_code == 0 and "matches the store" in again.output
    assert sandbox.api_key not in first.output + drifted.output + repaired.output


def test_sync_without_a_store_is_a_clear_error(tmp_path: Path, sandbox: RunningSandbox) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    result = runner.invoke(app, ["sync", str(loaded.path)])
    assert result.exit_code == 1
    assert "does not exist" in result.output


@pytest.mark.slow
def test_sandbox_command_prints_its_url_and_key_and_answers(tmp_path: Path) -> None:
    env = {**os.environ, "SANDBOX_KEY": "pk_" + "k" * 34}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warmup",
            "sandbox",
            "--port",
            "0",
            "--fast",
            "--api-key-env",
            "SANDBOX_KEY",
            "--state",
            str(tmp_path / "s.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        key_line = process.stdout.readline()
        assert first.startswith("Klaviyo sandbox on http://127.0.0.1:")
        assert key_line.strip() == "API key: from $SANDBOX_KEY"  # never the value itself
        base_url = first.split(" on ")[1].strip()
        response = httpx.get(
            f"{base_url}/api/lists",
            timeout=10,
            headers={"Authorization": "Klaviyo-API-Key pk_" + "k" * 34, "revision": "2026-07-15"},
        )
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_sync_pull_marks_klaviyo_unsubscribes_in_the_store(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    from tests.dispatch.klaviyo.klaviyo_helpers import fast_client
    from warmup.providers.klaviyo import lists as ops

    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(loaded.store_path)
    everyone = add_customers(store, 6)
    plan_day(store, 1, everyone[:3], everyone)
    store.close()
    assert runner.invoke(app, ["sync", str(loaded.path)]).exit_code == 0
    # someone unsubscribes in Klaviyo (a Klaviyo campaign's footer, say)
    ops.unsubscribe(fast_client(sandbox.base_url, sandbox.api_key), ["c1@example.com"])

    result = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert result.exit_code == 0, result.output
    assert "pulled 1 unsubscribes or suppressions from Klaviyo" in result.output
    store = open_store(loaded.store_path)
    status = dict(
        store.conn.execute(
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id"
        )
    )
    assert status["c1@example.com"] == "unsubscribed"
    assert [e for e, s in status.items() if s == "unsubscribed"] == ["c1@example.com"]
    again = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert "pulled 0 unsubscribes" in again.output  # the pull remembers where it got to
