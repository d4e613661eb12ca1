"""SendGrid's signed Event Webhook into `warmup serve`: events from the sandbox's real sends,
stored once each; forged, stale or unsigned requests refused and nothing stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.consent import add_customers, add_mail, write_plan
from warmup.consent import FlowReport, serve_in_thread
from warmup.consent.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from warmup.plan import LoadedPlan
from warmup.providers.base import MessageParts, OutgoingEmail
from warmup.providers.sendgrid import SendGridProvider, SendGridSettings
from warmup.sandbox.sendgrid import SendGridSandboxConfig
from warmup.sandbox.sendgrid_server import RunningSendGrid, serve_sendgrid_in_thread
from warmup.store import Store, open_store

PEOPLE = ["ann@example.com", "bounce+bob@example.com", "complaint+cy@example.com"]
PEOPLE += ["blocked+dan@example.com", "defer+eve@example.com"]


class Recorder:
    def __init__(self) -> None:
        self.ran = threading.Event()

    def __call__(self, loaded: LoadedPlan, store: Store) -> FlowReport:
        self.ran.set()
        return FlowReport(0, 0)


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSendGrid]:
    with serve_sendgrid_in_thread(SendGridSandboxConfig(fast=True)) as running:
        monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", running.public_key)
        yield running


def _plan(tmp_path: Path) -> LoadedPlan:
    loaded = write_plan(tmp_path)
    store = open_store(loaded.store_path)
    add_mail(store, 4, add_customers(store, PEOPLE).values())
    store.close()
    return loaded


def _send_to_everyone(sendgrid: RunningSendGrid) -> None:
    provider = SendGridProvider(
        SendGridSettings(api_key=sendgrid.api_key, base_url=sendgrid.base_url)
    )
    session = provider.open_session()
    messages = [
        OutgoingEmail(
            f"k{i}",
            "news@send.acme.example",
            email,
            "<m@x>",
            b"",
            MessageParts("News <news@send.acme.example>", None, "", "Hi", "t", "<p>h</p>", "<u>"),
        )
        for i, email in enumerate(PEOPLE)
    ]
    assert session.send_batch(messages, lambda batch: [True] * len(batch)) == [True] * 5
    session.close()


def _events(loaded: LoadedPlan) -> list[tuple[str, str, str, int]]:
    store = open_store(loaded.store_path)
    try:
        rows = store.conn.execute(
            "SELECT source, type, email, day FROM events ORDER BY email, type"
        ).fetchall()
    finally:
        store.close()
    return [tuple(r) for r in rows]


def test_signed_events_are_stored_once(tmp_path: Path, sendgrid: RunningSendGrid) -> None:
    loaded = _plan(tmp_path)
    with serve_in_thread(loaded, run=Recorder()) as service:
        sendgrid.app.hook.url = service.base_url + "/webhooks/sendgrid"
        _send_to_everyone(sendgrid)
        assert sendgrid.app.hook.flush()
        first = _events(loaded)
        sendgrid.app.hook.redeliver()
        assert sendgrid.app.hook.flush()
        assert _events(loaded) == first
        assert sendgrid.app.hook.failures == 0
    assert first == [
        ("sendgrid", "delivered", "ann@example.com", 4),
        ("sendgrid", "soft_bounced", "blocked+dan@example.com", 4),
        ("sendgrid", "hard_bounced", "bounce+bob@example.com", 4),
        ("sendgrid", "complained", "complaint+cy@example.com", 4),
        ("sendgrid", "delivered", "complaint+cy@example.com", 4),
        # a deferral is stored (once, by its sg_event_id) beside the later delivery
        ("sendgrid", "deferred", "defer+eve@example.com", 4),
        ("sendgrid", "delivered", "defer+eve@example.com", 4),
    ]


def test_forged_stale_and_unsigned_requests_are_refused(
    tmp_path: Path, sendgrid: RunningSendGrid
) -> None:
    loaded = _plan(tmp_path)
    body = json.dumps(
        [{"email": "ann@example.com", "event": "spamreport", "timestamp": 1, "sg_event_id": "x"}]
    ).encode()
    now = str(int(time.time()))
    with serve_in_thread(loaded, run=Recorder()) as service:
        url = service.base_url + "/webhooks/sendgrid"

        def post(content: bytes, signature: str | None, stamp: str) -> httpx.Response:
            headers = {TIMESTAMP_HEADER: stamp}
            if signature is not None:
                headers[SIGNATURE_HEADER] = signature
            return httpx.post(url, content=content, headers=headers)

        good = sendgrid.app.hook.sign(now, body)
        assert post(body.replace(b"ann", b"bob"), good, now).status_code == 401
        assert post(body, None, now).status_code == 401
        stale = str(int(time.time()) - 3600)
        assert post(body, sendgrid.app.hook.sign(stale, body), stale).status_code == 401
        assert _events(loaded) == []
        accepted = post(body, good, now)
        assert accepted.status_code == 200
        assert accepted.json() == {"stored": 1, "duplicates": 0}
    assert _events(loaded) == [("sendgrid", "complained", "ann@example.com", 4)]


def test_without_the_key_the_route_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    loaded = _plan(tmp_path)
    with serve_in_thread(loaded, run=Recorder()) as service:
        reply = httpx.post(service.base_url + "/webhooks/sendgrid", content=b"[]")
    assert reply.status_code == 503
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in reply.json()["error"]
