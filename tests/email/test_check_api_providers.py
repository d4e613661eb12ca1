"""`warmup check PLAN` with an email API as the new provider: SES's account is read with
GetAccount (signed with the credentials the plan names), SendGrid's key is tried with an empty
Mail Send that SendGrid refuses (400) after the key check and before sending anything. The
check crashed on both (`unexpected AssertionError`: it expected an SMTP relay)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support import plans
from warmup.cli import app
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.sandbox.sendgrid import SendGridSandboxConfig
from warmup.sandbox.sendgrid_server import RunningSendGrid, serve_sendgrid_in_thread
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import RunningSes, serve_ses_in_thread
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture
def klaviyo() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=5)) as running:
        yield running


@pytest.fixture
def ses() -> Iterator[RunningSes]:
    with serve_ses_in_thread(SesSandboxConfig(fast=True)) as running:
        yield running


@pytest.fixture
def sendgrid() -> Iterator[RunningSendGrid]:
    with serve_sendgrid_in_thread(SendGridSandboxConfig(fast=True)) as running:
        yield running


def _plan(
    tmp: Path, klaviyo: RunningSandbox, new: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The plan with ``new`` as its provider, and the environment both checks share."""
    monkeypatch.delenv("WARMUP_STORE", raising=False)
    monkeypatch.delenv("WARMUP_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("KLAVIYO_API_KEY", klaviyo.api_key)
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "s" * 40)
    path = plans.write_plan(
        tmp,
        settings={
            "store": str(tmp / "check.db"),
            "providers": {"klaviyo": {"base_url": klaviyo.base_url}},
        },
    )
    document = yaml.safe_load(path.read_text())
    document["providers"]["new"] = new
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    open_store(tmp / "check.db").close()
    return path


def _checks(plan: Path) -> tuple[int, dict[str, dict[str, object]]]:
    result = runner.invoke(app, ["check", str(plan), "--json"])
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    document = json.loads(result.stdout)
    names = [c["name"] for c in document["checks"]]
    assert len(names) == len(set(names)), names
    return result.exit_code, {c["name"]: c for c in document["checks"]}


def test_ses_account_is_read_and_bad_credentials_fail_its_line(
    tmp_path: Path, klaviyo: RunningSandbox, ses: RunningSes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ses.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ses.secret_access_key)
    new: dict[str, object] = {"kind": "ses", "region": "us-east-1", "endpoint_url": ses.base_url}
    plan = _plan(tmp_path, klaviyo, new, monkeypatch)
    code, checks = _checks(plan)
    assert code == 0, checks
    assert checks["ses"]["ok"] and "us-east-1" in str(checks["ses"]["detail"])
    assert "AWS_ACCESS_KEY_ID" in {n.removeprefix("env ") for n in checks}
    assert checks["env WARMUP_UNSUBSCRIBE_SECRET"]["ok"]
    # SES's events come through SNS: the generic webhook secret is not a 503 to worry about
    assert "arrive at /webhooks/ses" in str(checks["env WARMUP_WEBHOOK_SECRET"]["detail"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong" * 8)
    code, checks = _checks(plan)
    assert code == 1 and not checks["ses"]["ok"]
    assert ses.secret_access_key not in json.dumps(checks)
    # a check sends nothing: the sending run's "rows stay pending, run again" does not apply
    detail = str(checks["ses"]["detail"])
    assert "signature" in detail and "credentials" in detail
    assert "pending" not in detail and "run again" not in detail


def test_sendgrid_key_is_tried_without_sending(
    tmp_path: Path,
    klaviyo: RunningSandbox,
    sendgrid: RunningSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid.api_key)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid.public_key)
    new = {"kind": "sendgrid", "base_url": sendgrid.base_url}
    plan = _plan(tmp_path, klaviyo, new, monkeypatch)
    code, checks = _checks(plan)
    assert code == 0, checks
    assert checks["sendgrid"]["ok"] and sendgrid.app.accepted == 0
    assert "env SENDGRID_API_KEY" in checks
    assert checks["env SENDGRID_WEBHOOK_PUBLIC_KEY"]["ok"]
    assert "arrive at /webhooks/sendgrid" in str(checks["env WARMUP_WEBHOOK_SECRET"]["detail"])
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY")
    code, checks = _checks(plan)
    assert code == 1 and not checks["env SENDGRID_WEBHOOK_PUBLIC_KEY"]["ok"]
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid.public_key)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong.key")
    code, checks = _checks(plan)
    assert code == 1 and not checks["sendgrid"]["ok"]
    assert "401" in str(checks["sendgrid"]["detail"])
    assert "SG.wrong.key" not in json.dumps(checks)
