"""`warmup demo --provider ses|sendgrid`: the example plan through an email API sandbox, offline,
with the provider's signed events delivered to `warmup serve` and stored once each."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app
from warmup.store import open_store

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["ses", "sendgrid"])
def test_demo_runs_through_the_api_sandbox(tmp_path: Path, provider: str) -> None:
    workspace = tmp_path / provider
    result = runner.invoke(
        app,
        [
            "demo",
            "--provider",
            provider,
            "--dir",
            str(workspace),
            "--customers",
            "300",
            "--days",
            "2",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    store = open_store(workspace / "demo.db", create=False)
    try:
        sent, people = store.conn.execute(
            "SELECT count(*), count(DISTINCT customer_id) FROM outbox "
            "WHERE kind = 'email' AND status = 'sent'"
        ).fetchone()
        events = store.conn.execute(
            "SELECT source, type, count(*), count(DISTINCT customer_id) FROM events "
            "GROUP BY source, type"
        ).fetchall()
    finally:
        store.close()
    assert sent == 100
    # One delivery event per message sent (day 2 mails day 1's 50 again), none twice.
    assert [tuple(e) for e in events] == [(provider, "delivered", 100, people)]


def test_an_unknown_demo_provider_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--provider", "postmark", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not one of smtp, ses, sendgrid" in result.output
