"""The SendGrid provider through the real dispatcher, against the SendGrid sandbox on loopback
(request bodies checked against SendGrid's own OpenAPI schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from warmup.errors import DeliveryError
from warmup.sandbox.sendgrid import SendGridSandboxConfig
from warmup.sandbox.sendgrid_server import RunningSendGrid, serve_sendgrid_in_thread
from warmup.store import Store

FAST = RetryPolicy(attempts=6, first_delay=0.02, wait_up_to=5)


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSendGrid]:
    with serve_sendgrid_in_thread(SendGridSandboxConfig(fast=True, keep_messages=True)) as sg:
        monkeypatch.setenv("SENDGRID_API_KEY", sg.api_key)
        yield sg


def sg_config(running: RunningSendGrid, **extra: Any) -> dict[str, Any]:
    return {"kind": "sendgrid", "base_url": running.base_url, "max_connections": 2, **extra}


def test_messages_go_in_batches_with_each_recipients_own_headers(
    tmp_path: Path, store: Store, sendgrid: RunningSendGrid
) -> None:
    ids = add_customers(store, 30, first_name="Jana") + add_customers(
        store, 30, start=30, first_name="Petr"
    )
    add_email_rows(store, 1, ids)
    loaded = write_plan(tmp_path, new=sg_config(sendgrid, batch_size=25))
    report = drain_email(loaded, store, 1)
    assert drain_email(loaded, store, 1).sent == 0
    assert (report.sent, report.failed) == (60, 0)
    assert statuses(store, 1) == {"sent": 60}
    # Names and unsubscribe URLs are substitutions: one body, so the floor of ceil(60/25).
    assert sendgrid.app.requests == 3
    messages = sendgrid.app.messages
    assert sorted(m["to"] for m in messages) == sorted(f"user{i}@example.com" for i in range(60))
    for message in messages:
        url = message["headers"]["List-Unsubscribe"].split(">")[0].lstrip("<")
        assert (
            verify_token(SECRET, "test-plan", url.split("token=")[1], email_of(store))
            == message["to"]
        )
        assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert url.replace("&", "&amp;") in message["html"] or url in message["html"]
        assert message["custom_args"]["warmup_key"].startswith("test-plan:1:email:")
    names = {m["to"]: m["text"] for m in messages}
    assert "Hi Petr," in names["user45@example.com"]
    assert "Hi Jana," in names["user3@example.com"]


def test_a_refused_address_fails_alone_and_the_rest_is_sent(
    tmp_path: Path, store: Store, sendgrid: RunningSendGrid
) -> None:
    ids = add_customers(store, 5) + add_customers(store, 1, start=7, prefix="reject+")
    add_email_rows(store, 1, ids)
    report = drain_email(write_plan(tmp_path, new=sg_config(sendgrid)), store, 1)
    assert (report.sent, report.failed, report.bounced) == (5, 1, 0)
    error = store.conn.execute(
        "SELECT last_error FROM outbox WHERE kind = 'email' AND status = 'failed'"
    ).fetchone()[0]
    assert "valid address" in error


def test_429_waits_for_the_rate_limit_reset(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SendGridSandboxConfig(requests_per_second=2)
    with serve_sendgrid_in_thread(config) as running:
        monkeypatch.setenv("SENDGRID_API_KEY", running.api_key)
        ids = add_customers(store, 12)
        add_email_rows(store, 1, ids)
        loaded = write_plan(tmp_path, new=sg_config(running, batch_size=2, max_connections=3))
        report = drain_email(loaded, store, 1, retry=FAST)
        assert running.app.throttled > 0
    assert report.retried > 0
    assert statuses(store, 1) == {"sent": 12}
    assert running.app.accepted == 12


def test_a_wrong_key_stops_the_run_with_rows_pending(
    tmp_path: Path, store: Store, sendgrid: RunningSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    add_email_rows(store, 1, add_customers(store, 3))
    with pytest.raises(DeliveryError, match="401"):
        drain_email(write_plan(tmp_path, new=sg_config(sendgrid)), store, 1)
    assert statuses(store, 1) == {"pending": 3}
