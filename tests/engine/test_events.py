"""The event flow: unsubscribes and complaints reach consent and the unsubscribe list once."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.storefill import NOW, table
from warmup.engine import process_events
from warmup.plan import LoadedPlan
from warmup.store import events, open_store


def add_event(
    store_path: Path | str,
    event_id: str,
    kind: str,
    *,
    customer_id: int | None = None,
    email: str | None = None,
) -> None:
    store = open_store(store_path)
    with store.backend.transaction():
        events.insert(
            store.backend, events.Event("new", event_id, kind, customer_id, email, None, NOW, NOW)
        )
    store.close()


def test_unsubscribe_and_complaint(plan1: LoadedPlan, plan1_store: str) -> None:
    subscribed = [
        int(r[0])
        for r in table(  # type: ignore[arg-type]
            plan1_store,
            "SELECT customer_id FROM consents WHERE status = 'subscribed' "
            "ORDER BY customer_id LIMIT 2",
        )
    ]
    add_event(plan1_store, "e1", "unsubscribed", customer_id=subscribed[0])
    add_event(plan1_store, "e2", "complained", email=f" USER{subscribed[1]}@example.com ")
    add_event(plan1_store, "e3", "hard_bounced", customer_id=subscribed[0])
    store = open_store(plan1_store)
    try:
        assert process_events(plan1, store) == 2
        assert process_events(plan1, store) == 0
    finally:
        store.close()
    statuses = table(
        plan1_store,
        "SELECT customer_id, status FROM consents WHERE customer_id IN (?, ?) ORDER BY customer_id",
        tuple(subscribed),
    )
    assert statuses == [(subscribed[0], "unsubscribed"), (subscribed[1], "unsubscribed")]
    changes = table(
        plan1_store,
        "SELECT customer_id, old_status, new_status FROM consent_changes ORDER BY customer_id",
    )
    assert changes == [
        (subscribed[0], "subscribed", "unsubscribed"),
        (subscribed[1], "subscribed", "unsubscribed"),
    ]
    rows = table(
        plan1_store,
        "SELECT key, kind, provider, node_id, status, payload FROM outbox_rows ORDER BY key",
    )
    ids = {r[0] for r in table(plan1_store, "SELECT id FROM events WHERE type != 'hard_bounced'")}
    assert [r[0] for r in rows] == sorted(
        f"engine-test:event:{eid}:297:{cid}"
        for eid, cid in zip(sorted(ids), subscribed, strict=True)
    )
    assert {r[1:5] for r in rows} == {("webhook", "klaviyo", "297", "pending")}
    payload = json.loads(str(rows[0][5]))
    assert payload["list"] == "unsubscribe" and payload["email"].startswith("user")
    assert set(payload) == {
        "list",
        "template",
        "batch_size",
        "email",
        "klaviyo_id",
        "phone",
        "external_id",
        "first_name",
        "last_name",
    }
    # Bounces are not this flow's business: left for guardrails.
    assert table(plan1_store, "SELECT processed_at FROM events WHERE type = 'hard_bounced'") == [
        (None,)
    ]
