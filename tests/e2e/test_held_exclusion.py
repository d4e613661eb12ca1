"""A customer whose exclusion Klaviyo refuses (on hold) is never mailed: not on their day, and
not late — the next day still runs and cancels that email, with Klaviyo's reason."""

from __future__ import annotations

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
from warmup.store import open_store


def test_held_exclusion_means_no_mail_then_or_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "held-test-secret")
    store_path = tmp_path / "store.db"
    monkeypatch.setenv("WARMUP_STORE", str(store_path))
    csv_path = write_sample_csv(tmp_path / "customers.csv", 300, seed=5)
    account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    runner = CliRunner()
    with serve_in_thread(SandboxConfig(fast=True, state=account)) as sandbox, smtp_sink() as sink:
        monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
        plan = demo_plan(klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=date(2026, 12, 1))
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        assert runner.invoke(app, ["import", str(plan_path), str(csv_path), "-q"]).exit_code == 0
        store = open_store(store_path)
        # every fifth customer: an address Klaviyo refuses, and no Klaviyo id to add them by
        store.conn.execute(
            "UPDATE customers SET email = 'x..' || email, klaviyo_id_confirmed = 0 WHERE id % 5 = 0"
        )
        day1 = runner.invoke(
            app, ["run", str(plan_path), "--day", "1", "--now", "2026-12-01T10:05"]
        )
        assert day1.exit_code == 0, day1.output
        held = {
            email
            for (email,) in store.conn.execute(
                "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.day = 1 AND o.kind = 'webhook' AND o.status = 'on_hold'"
            )
        }
        assert held, "no exclusion was refused: the test would prove nothing"
        mailed_day1 = {m.rcpt_tos[0] for m in sink.messages}
        assert not held & mailed_day1
        assert len(mailed_day1) == 50 - len(held)

        day2 = runner.invoke(
            app, ["run", str(plan_path), "--day", "2", "--now", "2026-12-02T10:05"]
        )
        assert day2.exit_code == 0, day2.output
        assert f"cancelled {len(held)} earlier email(s)" in day2.output
        rows = store.conn.execute(
            "SELECT status, last_error FROM outbox o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.day = 1 AND o.kind = 'email' AND c.email IN ({})".format(
                ",".join("?" * len(held))
            ),
            sorted(held),
        ).fetchall()
        assert {status for status, _ in rows} == {"cancelled"}
        assert all("Invalid email address" in (error or "") for _, error in rows)
        # still refused on day 2 (the address is still bad): not mailed on either day
        assert not held & {m.rcpt_tos[0] for m in sink.messages}
        assert len(sink.messages) > len(mailed_day1)  # day 2 did send to the others
        store.close()
