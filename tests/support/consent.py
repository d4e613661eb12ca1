"""Fixtures for the consent tests: a plan on temp paths, customers and sent mail written directly
(the engine's and dispatchers' contracts), and signed requests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from tests.support import plans
from tests.support.plans import example_text
from warmup.consent.webhooks import SIGNATURE_HEADER, sign
from warmup.plan import LoadedPlan, load_plan
from warmup.store import Store, consents, customers, now_iso
from warmup.store import events as stored_events

LINK_SECRET = "link-secret-for-tests-0123456789"
HOOK_SECRET = "hook-secret-for-tests-9876543210"
KEY_ENV = "KLAVIYO_TEST_KEY"


def write_plan(
    tmp: Path,
    *,
    base_url: str = "http://127.0.0.1:9",
    smtp_port: int = 2525,
    scenario: str = "variant-1",
    extra: str = "",
) -> LoadedPlan:
    """The example plan against ``base_url`` and a loopback SMTP server without a login."""
    edits = {
        "https://a.klaviyo.com": base_url,
        "api_key_env: KLAVIYO_API_KEY": f"api_key_env: {KEY_ENV}",
        "port: 2525": f"port: {smtp_port}",
        "    username_env: WARMUP_SMTP_USER\n": "",
        "    password_env: WARMUP_SMTP_PASSWORD\n": "",
    }
    return load_plan(plans.write_plan(tmp, base=example_text(scenario), edits=edits, extra=extra))


def add_customers(
    store: Store, emails: Iterable[str], *, status: str = "subscribed", segment: str = "engaged-90"
) -> dict[str, int]:
    now = now_iso()
    ids: dict[str, int] = {}
    conn = store.backend
    with conn.transaction():
        for email in emails:
            cid = customers.add(conn, email, at=now)
            consents.set_status(conn, cid, status, changed_at=now, source="test", keep=())
            customers.add_to_segment(conn, segment, cid, at=now)
            ids[email] = cid
    return ids


def add_mail(
    store: Store,
    day: int,
    customers: Iterable[int],
    *,
    status: str = "sent",
    created_at: str = "2026-12-01T09:00:00+00:00",
) -> None:
    """Email outbox rows as the email dispatcher leaves them."""
    store.backend.executemany(
        "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, status, "
        "created_at, updated_at) VALUES (?, ?, 'email', 'email', 'new', ?, '{}', ?, ?, ?)",
        [(f"t:{day}:email:{cid}", day, cid, status, created_at, created_at) for cid in customers],
    )


def add_events(store: Store, day: int, kind: str, customers: Iterable[int]) -> None:
    at = "2026-12-01T10:00:00+00:00"
    conn = store.backend
    with conn.transaction():
        for cid in customers:
            stored_events.insert(
                conn,
                stored_events.Event("test", f"{kind}:{day}:{cid}", kind, cid, None, day, at, at),
            )


def event(event_id: str, kind: str, email: str, **more: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "email": email,
        "occurred_at": "2026-12-01T10:05:00Z",
        **more,
    }


def post_events(
    base_url: str, events: list[dict[str, Any]] | bytes, *, secret: str = HOOK_SECRET
) -> httpx.Response:
    body = events if isinstance(events, bytes) else json.dumps({"events": events}).encode()
    return httpx.post(
        f"{base_url}/webhooks/events",
        content=body,
        headers={SIGNATURE_HEADER: sign(secret.encode(), body), "Content-Type": "application/json"},
    )


def counts(store: Store) -> tuple[int, int, int]:
    """(events, unsubscribed consents, consent changes): what a rejected request must not move."""
    conn = store.backend
    return (
        conn.execute("SELECT count(*) FROM events").fetchone()[0],
        conn.execute("SELECT count(*) FROM consents WHERE status = 'unsubscribed'").fetchone()[0],
        conn.execute("SELECT count(*) FROM consent_changes").fetchone()[0],
    )
