"""Fill a store by hand with what an engine run leaves behind (days, allocations, journeys,
outbox, events), so the views can be tested before and apart from the engine."""

from __future__ import annotations

import json
from pathlib import Path

from warmup.store import Store, now_iso, open_store

NOW = "2026-12-01T08:00:00+00:00"


def add_customers(store: Store, count: int, segment: str = "engaged-90") -> list[int]:
    ids: list[int] = []
    with store.transaction() as conn:
        for i in range(count):
            cur = conn.execute(
                "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?)",
                (f"c{i}@example.com", NOW, NOW),
            )
            cid = int(cur.lastrowid or 0)
            ids.append(cid)
            conn.execute(
                "INSERT INTO consents VALUES (?, 'email', 'subscribed', ?, 'test')", (cid, NOW)
            )
            conn.execute("INSERT INTO segment_members VALUES (?, ?, ?)", (segment, cid, NOW))
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
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO days (day, date, status, new_limit, new_allocated, "
            "klaviyo_allocated, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                day,
                date,
                status,
                limit if limit is not None else len(new),
                len(new),
                len(klaviyo),
                NOW,
            ),
        )
        for cid in new:
            conn.execute(
                "INSERT INTO allocations (day, customer_id, provider, tier) "
                "VALUES (?, ?, 'new', 0)",
                (day, cid),
            )
        for cid in klaviyo:
            conn.execute(
                "INSERT INTO allocations (day, customer_id, provider, tier) "
                "VALUES (?, ?, 'klaviyo', 0)",
                (day, cid),
            )
        for path, members in (paths or {}).items():
            for cid in members:
                conn.execute(
                    "INSERT INTO journeys (day, customer_id, path, node, due_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (day, cid, json.dumps(list(path)), None, due_at),
                )

        def outbox(
            kind: str, statuses: dict[str, int] | None, node: str, extra: dict[str, str]
        ) -> None:
            queue = [s for s, n in (statuses or {"sent": len(new)}).items() for _ in range(n)]
            for cid, status in zip(new, queue, strict=False):
                conn.execute(
                    "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, "
                    "payload, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?)",
                    (
                        f"p:{day}:{node}:{cid}",
                        day,
                        node,
                        kind,
                        "new" if kind == "email" else "klaviyo",
                        cid,
                        json.dumps(extra),
                        status,
                        now_iso(),
                        now_iso(),
                    ),
                )

        outbox("webhook", webhook_status, "225", {"list": "exclusion"})
        outbox("email", email_status, "email", {"template": f"day-{day:02d}"})
        queue = [t for t, n in (events or {}).items() for _ in range(n)]
        for i, (cid, kind) in enumerate(zip(new, queue, strict=False)):
            conn.execute(
                "INSERT INTO events (source, event_id, type, customer_id, day, "
                "occurred_at, received_at) VALUES ('new', ?, ?, ?, ?, ?, ?)",
                (f"e{day}-{i}", kind, cid, day, NOW, NOW),
            )


def open_for(path: Path) -> Store:
    return open_store(path)
