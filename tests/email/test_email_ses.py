"""The SES provider through the real dispatcher, against the SES sandbox on loopback: SigV4
checked by the sandbox, bodies checked against SES's published API model."""

from __future__ import annotations

import base64
import email
import json
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.email.email_fixtures import (
    SECRET,
    add_customers,
    add_email_rows,
    email_of,
    statuses,
    write_plan,
)
from warmup.dispatch.email import RetryPolicy, drain_email
from warmup.email.tokens import verify_token
from warmup.errors import DeliveryError, InvalidInput
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import RunningSes, serve_ses_in_thread
from warmup.store import Store

FAST = RetryPolicy(attempts=6, first_delay=0.02, wait_up_to=5)


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSes]:
    config = SesSandboxConfig(region="eu-west-1", fast=True, keep_raw=True, seed=7)
    with serve_ses_in_thread(config) as running:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", running.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", running.secret_access_key)
        yield running


def ses_config(running: RunningSes, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "ses",
        "region": "eu-west-1",
        "endpoint_url": running.base_url,
        "configuration_set": "warmup",
        "max_connections": 4,
        **extra,
    }


def test_each_message_goes_once_with_the_plans_own_mime(
    tmp_path: Path, store: Store, ses: RunningSes
) -> None:
    ids = add_customers(store, 10)
    add_email_rows(store, 1, ids)
    loaded = write_plan(tmp_path, new=ses_config(ses))
    report = drain_email(loaded, store, 1)
    assert drain_email(loaded, store, 1).sent == 0
    assert (report.sent, report.failed) == (10, 0)
    assert statuses(store, 1) == {"sent": 10}
    accepted = ses.app.accepted
    assert sorted(a.recipient for a in accepted) == sorted(
        f"user{i}@example.com" for i in range(10)
    )
    raw = accepted[0].raw
    assert raw is not None
    message = email.message_from_bytes(raw, policy=policy.default)
    url = str(message["List-Unsubscribe"]).split(">")[0].lstrip("<")
    assert (
        verify_token(SECRET, "test-plan", url.split("token=")[1], email_of(store))
        == accepted[0].recipient
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(message["Message-ID"]).endswith("@send.acme.example>")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_the_accounts_send_rate_is_read_and_a_lower_cap_kept(
    tmp_path: Path, ses: RunningSes
) -> None:
    from warmup.dispatch.email import provider_for

    assert provider_for(write_plan(tmp_path, new=ses_config(ses))).rate_per_second == 1400.0
    capped = provider_for(write_plan(tmp_path, new=ses_config(ses, rate_per_second=5)))
    assert capped.rate_per_second == 5.0


def test_a_rejected_message_fails_alone_and_the_address_stays_mailable(
    tmp_path: Path, store: Store, ses: RunningSes
) -> None:
    ids = add_customers(store, 3) + add_customers(store, 1, start=9, prefix="reject+")
    add_email_rows(store, 1, ids)
    report = drain_email(write_plan(tmp_path, new=ses_config(ses)), store, 1)
    assert (report.sent, report.failed, report.bounced) == (3, 1, 0)
    row = store.conn.execute(
        "SELECT o.last_error, k.status FROM outbox o JOIN consents k USING (customer_id) "
        "WHERE o.kind = 'email' AND o.status = 'failed'"
    ).fetchone()
    assert "MessageRejected" in row[0]
    assert row[1] == "subscribed"


def test_throttling_and_server_errors_are_retried_until_sent(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SesSandboxConfig(region="eu-west-1", fast=True, faults=0.4, seed=3)
    with serve_ses_in_thread(config) as running:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", running.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", running.secret_access_key)
        ids = add_customers(store, 20)
        add_email_rows(store, 1, ids)
        report = drain_email(write_plan(tmp_path, new=ses_config(running)), store, 1, retry=FAST)
        assert running.app.throttled > 0
    assert report.retried > 0
    assert statuses(store, 1) == {"sent": 20}
    assert len(running.app.accepted) == 20


def test_wrong_credentials_stop_the_run_with_rows_pending(
    tmp_path: Path, store: Store, ses: RunningSes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    add_email_rows(store, 1, add_customers(store, 2))
    with pytest.raises(DeliveryError, match="signature"):
        drain_email(write_plan(tmp_path, new=ses_config(ses)), store, 1)
    assert statuses(store, 1) == {"pending": 2}
    assert ses.app.accepted == []


def test_a_missing_credential_variable_is_named(
    tmp_path: Path, store: Store, ses: RunningSes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    add_email_rows(store, 1, add_customers(store, 1))
    with pytest.raises(InvalidInput, match="AWS_SECRET_ACCESS_KEY is not set"):
        drain_email(write_plan(tmp_path, new=ses_config(ses)), store, 1)


def _signed(running: RunningSes, body: dict[str, Any], secret: str) -> httpx.Response:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    data = json.dumps(body).encode()
    url = running.base_url + "/v2/email/outbound-emails"
    request = botocore.awsrequest.AWSRequest("POST", url, data=data)
    request.headers["Content-Type"] = "application/json"
    creds = botocore.credentials.Credentials(running.access_key_id, secret)
    botocore.auth.SigV4Auth(creds, "ses", "eu-west-1").add_auth(request)
    return httpx.post(url, content=data, headers=dict(request.headers.items()))


def test_the_sandbox_checks_signatures_and_the_published_model(ses: RunningSes) -> None:
    raw = base64.b64encode(b"From: a@b.example\r\nTo: c@d.example\r\n\r\nhi\r\n").decode()
    good = {"Destination": {"ToAddresses": ["c@d.example"]}, "Content": {"Raw": {"Data": raw}}}
    assert _signed(ses, good, ses.secret_access_key).status_code == 200
    forged = _signed(ses, good, "x" * 40)
    assert forged.status_code == 403
    assert forged.headers["x-amzn-ErrorType"] == "SignatureDoesNotMatch"
    unknown = _signed(ses, {**good, "Sender": "x"}, ses.secret_access_key)
    assert unknown.status_code == 400
    assert "unknown member Sender" in unknown.json()["message"]
    missing = _signed(ses, {"Destination": good["Destination"]}, ses.secret_access_key)
    assert "missing required member Content" in missing.json()["message"]
    assert httpx.post(ses.base_url + "/v2/email/outbound-emails", json=good).status_code == 403


def test_validate_summarises_an_api_provider_and_points_at_a_bad_region(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from warmup.cli import app

    runner = CliRunner()
    good = write_plan(tmp_path, new={"kind": "ses", "region": "eu-west-1"})
    result = runner.invoke(app, ["validate", str(good.path)])
    assert result.exit_code == 0, result.output
    assert "new        ses eu-west-1 (AWS), credentials: env, account's rate" in result.output
    text = good.path.read_text().replace("region: eu-west-1", "region: Ireland")
    good.path.write_text(text)
    line = text.splitlines().index("    region: Ireland") + 1
    result = runner.invoke(app, ["validate", str(good.path)])
    assert result.exit_code == 2
    assert f"plan.yaml:{line}:" in result.output
    assert "'Ireland' is not an AWS region" in result.output
    assert "write one like eu-west-1" in result.output


def test_an_unknown_configuration_set_stops_the_run_with_the_row_pending_again(
    tmp_path: Path, store: Store, ses: RunningSes
) -> None:
    add_email_rows(store, 1, add_customers(store, 2))
    config = ses_config(ses, configuration_set="missing", max_connections=1)
    with pytest.raises(DeliveryError, match="Configuration set <missing> does not exist"):
        drain_email(write_plan(tmp_path, new=config), store, 1)
    # SES answered: nothing was sent, so nothing is left 'sending' (it would become uncertain).
    assert statuses(store, 1) == {"pending": 2}
    assert ses.app.accepted == []
