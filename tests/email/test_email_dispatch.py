"""The dispatcher against a real SMTP server on loopback (aiosmtpd) and a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.email.email_fixtures import (
    SECRET,
    add_customers,
    add_email_rows,
    email_key,
    smtp_config,
    statuses,
    write_plan,
)
from warmup.dispatch.email import RetryPolicy, drain_email
from warmup.email.sink import smtp_sink
from warmup.email.tokens import verify_token
from warmup.errors import DeliveryError, InvalidInput
from warmup.store import Store
from warmup.store.outbox import Outbox

FAST = RetryPolicy(attempts=3, first_delay=0.05, wait_up_to=5)


def test_every_due_row_is_delivered_once_with_its_headers(tmp_path: Path, store: Store) -> None:
    ids = add_customers(store, 12)
    add_email_rows(store, 2, ids)
    with smtp_sink() as sink:
        loaded = write_plan(tmp_path, new=smtp_config(sink.port))
        report = drain_email(loaded, store, 2)
        again = drain_email(loaded, store, 2)
    assert (report.sent, report.failed, report.bounced, report.waiting) == (12, 0, 0, 0)
    assert again.sent == 0
    assert statuses(store, 2) == {"sent": 12}
    assert sorted(sink.recipients()) == sorted(f"user{i}@example.com" for i in range(12))
    message = sink.messages[0].parsed()
    recipient = sink.messages[0].rcpt_tos[0]
    assert sink.messages[0].mail_from == "news@send.acme.example"
    assert message["To"].addresses[0].addr_spec == recipient
    assert message["Subject"] == "This week's five picks from the workshop"
    assert "Hi Jana," in message.get_body(("plain",)).get_content()
    url = message["List-Unsubscribe"].split(">")[0].lstrip("<")
    assert url.startswith("https://acme.example/unsubscribe?token=")
    token = url.split("token=")[1]
    assert recipient.split("@")[0] not in token  # the token does not show the address

    def email_of(customer_id: int) -> str | None:
        row = store.conn.execute("SELECT email FROM customers WHERE id = ?", (customer_id,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    assert verify_token(SECRET, "test-plan", token, email_of) == recipient
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    ids_seen = {m.parsed()["Message-ID"] for m in sink.messages}
    assert len(ids_seen) == 12


def test_rows_wait_for_their_exclusion_call_and_their_time(tmp_path: Path, store: Store) -> None:
    ids = add_customers(store, 6)
    add_email_rows(store, 1, ids[:2], exclusion="pending")
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    add_email_rows(store, 1, ids[2:4], not_before=later)
    add_email_rows(store, 1, ids[4:], exclusion=None)
    with smtp_sink() as sink:
        loaded = write_plan(tmp_path, new=smtp_config(sink.port))
        report = drain_email(loaded, store, 1)
        assert sorted(sink.recipients()) == ["user4@example.com", "user5@example.com"]
        assert (report.sent, report.waiting) == (2, 4)
        assert Outbox(store).email_backlog()["blocked"] == 2
        store.conn.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'webhook'")
        assert drain_email(loaded, store, 1).sent == 2
        assert len(sink.messages) == 4


def test_a_customer_who_unsubscribed_meanwhile_is_not_mailed(tmp_path: Path, store: Store) -> None:
    ids = add_customers(store, 3)
    add_email_rows(store, 1, ids)
    store.conn.execute(
        "UPDATE consents SET status = 'unsubscribed' WHERE customer_id = ?", (ids[1],)
    )
    with smtp_sink() as sink:
        report = drain_email(write_plan(tmp_path, new=smtp_config(sink.port)), store, 1)
    assert "user1@example.com" not in sink.recipients()
    assert (report.sent, report.cancelled) == (2, 1)
    assert statuses(store, 1) == {"sent": 2, "cancelled": 1}


def test_4xx_is_retried_with_backoff_and_5xx_is_a_hard_bounce(tmp_path: Path, store: Store) -> None:
    ids = add_customers(store, 5)
    add_email_rows(store, 1, ids)
    replies: dict[str, str | list[str]] = {
        "user1@example.com": ["421 4.7.0 try again later"],
        "user2@example.com": "550 5.1.1 no such user",
        "user3@example.com": "451 4.3.0 always busy",
    }
    with smtp_sink(replies=replies) as sink:
        report = drain_email(write_plan(tmp_path, new=smtp_config(sink.port)), store, 1, retry=FAST)
    assert sorted(sink.recipients()) == [
        "user0@example.com",
        "user1@example.com",
        "user4@example.com",
    ]
    assert (report.sent, report.bounced, report.failed) == (3, 1, 1)
    rows = dict(store.conn.execute("SELECT key, status FROM outbox WHERE kind = 'email'"))
    assert rows[email_key(1, ids[2])] == "bounced"
    assert rows[email_key(1, ids[3])] == "failed"
    attempts = dict(store.conn.execute("SELECT key, attempts FROM outbox WHERE kind = 'email'"))
    assert attempts[email_key(1, ids[1])] == 2
    assert attempts[email_key(1, ids[2])] == 1
    assert attempts[email_key(1, ids[3])] == FAST.attempts
    events = store.conn.execute(
        "SELECT type, source, customer_id, day, payload FROM events"
    ).fetchall()
    assert [(t, s, c, d) for t, s, c, d, _ in events] == [("hard_bounced", "smtp", ids[2], 1)]
    assert json.loads(events[0][4])["code"] == 550
    consent = dict(store.conn.execute("SELECT customer_id, status || '/' || source FROM consents"))
    assert consent[ids[2]] == "suppressed/hard_bounce"
    assert consent[ids[3]] != "suppressed/hard_bounce"  # a 4xx that gave up is no bounce


def test_connections_are_reused_and_bounded(tmp_path: Path, store: Store) -> None:
    ids = add_customers(store, 30)
    add_email_rows(store, 1, ids)
    with smtp_sink() as sink:
        report = drain_email(
            write_plan(tmp_path, new=smtp_config(sink.port, max_connections=2)), store, 1
        )
    assert report.sent == 30
    assert 1 <= sink.connections <= 2


def test_a_relay_that_cannot_be_used_stops_the_run_with_rows_pending(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_email_rows(store, 1, add_customers(store, 5))
    monkeypatch.setenv("WARMUP_SMTP_USER", "relay-user")
    monkeypatch.setenv("WARMUP_SMTP_PASSWORD", "wrong-pass")
    with smtp_sink(auth=("relay-user", "relay-pass")) as sink:
        config = smtp_config(
            sink.port, username_env="WARMUP_SMTP_USER", password_env="WARMUP_SMTP_PASSWORD"
        )
        with pytest.raises(DeliveryError, match="refused the login") as raised:
            drain_email(write_plan(tmp_path, new=config), store, 1)
        assert "wrong-pass" not in raised.value.render()
        port = sink.port
    with pytest.raises(DeliveryError, match="cannot use the SMTP server"):
        drain_email(write_plan(tmp_path, new=smtp_config(port)), store, 1)
    assert statuses(store, 1) == {"pending": 5}
    assert store.conn.execute("SELECT max(attempts) FROM outbox").fetchone()[0] == 0


def test_missing_smtp_credentials_name_the_variable(tmp_path: Path, store: Store) -> None:
    config = smtp_config(1, username_env="WARMUP_SMTP_USER", password_env="WARMUP_SMTP_PASSWORD")
    with pytest.raises(InvalidInput, match="WARMUP_SMTP_USER"):
        drain_email(write_plan(tmp_path, new=config), store, 1)


def test_smtp_refuses_to_run_without_the_unsubscribe_secret(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARMUP_UNSUBSCRIBE_SECRET")
    add_email_rows(store, 1, add_customers(store, 1))
    with pytest.raises(InvalidInput, match="WARMUP_UNSUBSCRIBE_SECRET"):
        drain_email(write_plan(tmp_path, new=smtp_config(1)), store, 1)
    assert statuses(store, 1) == {"pending": 1}


def test_the_file_provider_writes_one_eml_per_row(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARMUP_UNSUBSCRIBE_SECRET")
    ids = add_customers(store, 4)
    add_email_rows(store, 3, ids)
    loaded = write_plan(tmp_path, new={"kind": "file", "directory": "eml"})
    report = drain_email(loaded, store, 3)
    files = sorted((tmp_path / "eml").glob("*.eml"))
    assert report.sent == 4 and len(files) == 4
    assert files[0].name == email_key(3, ids[0]).replace(":", "_") + ".eml"
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in files[0].read_bytes()
