"""Fill a store by hand with what an engine run leaves behind (days, allocations, journeys,
outbox, events), so the views can be tested before and apart from the engine. Rows go in through
sqlite-utils' table API: named columns, no hand-written SQL to keep in step with the schema."""

from __future__ import annotations

import json
from pathlib import Path

from warmup.store import Store, now_iso, open_store

NOW = "2026-12-01T08:00:00+00:00"


def add_customers(store: Store, count: int, segment: str = "engaged-90") -> list[int]:
    db = store.db
    emails = [f"c{i}@example.com" for i in range(count)]
    db["customers"].insert_all(
        {"email": email, "created_at": NOW, "updated_at": NOW} for email in emails
    )
    by_email = {
        str(row["email"]): int(row["id"]) for row in db["customers"].rows_where(select="id, email")
    }
    ids = [by_email[email] for email in emails]
    db["consents"].insert_all(
        {
            "customer_id": cid,
            "channel": "email",
            "status": "subscribed",
            "changed_at": NOW,
            "source": "test",
        }
        for cid in ids
    )
    db["segment_members"].insert_all(
        {"segment": segment, "customer_id": cid, "added_at": NOW} for cid in ids
    )
    return ids


def add_day(
    store: Store,
    day: int,
    date: str,
    *,
    status: str,
    new: list[int],
    klaviyo: list[int],
    limit: int | None = None,
    email_status: dict[str, int] | None = None,
    webhook_status: dict[str, int] | None = None,
    paths: dict[tuple[str, ...], list[int]] | None = None,
    events: dict[str, int] | None = None,
    due_at: str | None = None,
) -> None:
    """One day: allocations, journeys (``paths`` maps a node-id path to its customers), email
    and exclusion-list outbox rows for the ``new`` customers (statuses handed out in order),
    and events naming the first customers."""
    db = store.db
    db["days"].insert(
        {
            "day": day,
            "date": date,
            "status": status,
            "new_limit": limit if limit is not None else len(new),
            "new_allocated": len(new),
            "klaviyo_allocated": len(klaviyo),
            "started_at": NOW,
        }
    )
    db["allocations"].insert_all(
        [{"day": day, "customer_id": cid, "provider": "new", "tier": 0} for cid in new]
        + [{"day": day, "customer_id": cid, "provider": "klaviyo", "tier": 0} for cid in klaviyo]
    )
    db["journeys"].insert_all(
        {
            "day": day,
            "customer_id": cid,
            "path": json.dumps(list(path)),
            "node": None,
            "due_at": due_at,
        }
        for path, members in (paths or {}).items()
        for cid in members
    )

    def outbox(
        kind: str, statuses: dict[str, int] | None, node: str, extra: dict[str, str]
    ) -> None:
        queue = [s for s, n in (statuses or {"sent": len(new)}).items() for _ in range(n)]
        db["outbox"].insert_all(
            {
                "key": f"p:{day}:{node}:{cid}",
                "day": day,
                "node_id": node,
                "kind": kind,
                "provider": "new" if kind == "email" else "klaviyo",
                "customer_id": cid,
                "payload": json.dumps(extra),
                "status": status,
                "created_at": now_iso(),
                "updated_at": now_iso(),
            }
            for cid, status in zip(new, queue, strict=False)
        )

    outbox("webhook", webhook_status, "225", {"list": "exclusion"})
    outbox("email", email_status, "email", {"template": f"day-{day:02d}"})
    queue = [t for t, n in (events or {}).items() for _ in range(n)]
    db["events"].insert_all(
        {
            "source": "new",
            "event_id": f"e{day}-{i}",
            "type": kind,
            "customer_id": cid,
            "day": day,
            "occurred_at": NOW,
            "received_at": NOW,
        }
        for i, (cid, kind) in enumerate(zip(new, queue, strict=False))
    )


def open_for(path: Path) -> Store:
    return open_store(path)
