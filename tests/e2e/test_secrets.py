"""Credentials never leave the environment: a real day against the Klaviyo sandbox and an SMTP
sink with a login, and neither the API key, the SMTP password nor the unsubscribe secret shows up
on stdout/stderr, in any log record or anywhere in the store's SQL dump."""

from __future__ import annotations

import logging
import sqlite3
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

API_KEY = "pk_" + "sentinelkey" * 3 + "x"  # Klaviyo's shape: pk_ and 34 characters
SMTP_USER = "relay-user"
SMTP_PASSWORD = "smtp-sentinel-password-9f3e"
LINK_SECRET = "unsubscribe-sentinel-secret-4c1d"
SECRETS = (API_KEY, SMTP_PASSWORD, LINK_SECRET)


def test_a_real_day_leaks_no_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and the providers log requests at DEBUG
    monkeypatch.setenv("KLAVIYO_API_KEY", API_KEY)
    monkeypatch.setenv("WARMUP_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("WARMUP_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", LINK_SECRET)
    store_path = tmp_path / "store.db"
    monkeypatch.setenv("WARMUP_STORE", str(store_path))
    csv_path = write_sample_csv(tmp_path / "customers.csv", 200, seed=3)
    account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    runner = CliRunner()
    config = SandboxConfig(fast=True, state=account, api_key=API_KEY)
    with (
        serve_in_thread(config) as sandbox,
        smtp_sink(auth=(SMTP_USER, SMTP_PASSWORD)) as sink,
    ):
        plan = demo_plan(klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=date(2026, 12, 1))
        plan["providers"]["new"].update(
            username_env="WARMUP_SMTP_USER", password_env="WARMUP_SMTP_PASSWORD"
        )
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        outputs = []
        for argv in (
            ["import", str(plan_path), str(csv_path), "--quiet"],
            ["run", str(plan_path), "--day", "1", "--now", "2026-12-01T10:05"],
            ["status", str(plan_path), "--json"],
        ):
            result = runner.invoke(app, argv)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        delivered = sink.count
    assert delivered > 0, "the day sent nothing: the test would prove nothing"
    dump = "\n".join(sqlite3.connect(store_path).iterdump())
    assert "INSERT INTO" in dump and "outbox" in dump
    logs = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    for secret in SECRETS:
        assert all(secret not in output for output in outputs)
        assert secret not in logs
        assert secret not in dump
