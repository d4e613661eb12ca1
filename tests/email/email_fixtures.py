"""Plans, customers and outbox rows for the email tests, written straight into a real store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from tests.support import plans
from warmup.plan import LoadedPlan, load_plan
from warmup.store import Store, consents, customers, now_iso

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-secret-0123456789abcdef"
PLAN_NAME = "test-plan"


def write_plan(
    folder: Path,
    *,
    new: dict[str, Any] | None = None,
    templates: Path | None = None,
    days: int = 3,
    day_template: str | None = None,
) -> LoadedPlan:
    plan = {
        "name": PLAN_NAME,
        "timezone": "Europe/Prague",
        "start_date": "2026-12-01",
        "scenario": str(REPO / "scenarios" / "variant-1.yaml"),
        "templates": str(templates or REPO / "templates"),
        "sender": {"from": "Acme News <news@send.acme.example>", "reply_to": "care@acme.example"},
        "unsubscribe": {
            "url": "https://acme.example/unsubscribe",
            "mailto": "unsubscribe@acme.example",
            "secret_env": "WARMUP_UNSUBSCRIBE_SECRET",
        },
        "providers": {
            "new": new or {"kind": "file", "directory": "eml"},
            "klaviyo": {"exclusion_list": {"name": "x"}, "unsubscribe_list": {"name": "u"}},
        },
        "schedule": {
            "days": [
                {"day": d, "new": 10, "template": day_template or f"day-{d:02d}"}
                for d in range(1, days + 1)
            ]
        },
    }
    return load_plan(plans.write_plan(folder, base=plan))


def smtp_config(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "max_connections": 4,
        "rate_per_second": 10_000,
        "timeout_seconds": 10,
        **extra,
    }


def add_customers(
    store: Store,
    count: int,
    *,
    start: int = 0,
    consent: str = "subscribed",
    first_name: str | None = "Jana",
    prefix: str = "user",
) -> list[int]:
    now = now_iso()
    table = store.db["customers"]
    assert isinstance(table, sqlite_utils.db.Table)
    ids = [
        int(
            table.insert(
                {
                    "email": f"{prefix}{i}@example.com",
                    "first_name": first_name,
                    "last_name": "Novák",
                    "attributes": json.dumps({"tier": "gold"}),
                    "created_at": now,
                    "updated_at": now,
                }
            ).last_pk
        )
        for i in range(start, start + count)
    ]
    with store.transaction() as conn:
        for cid in ids:
            consents.set_status(conn, cid, consent, changed_at=now, source="test", keep=())
    return ids


def email_key(day: int, customer_id: int) -> str:
    return f"{PLAN_NAME}:{day}:email:{customer_id}"


def add_email_rows(
    store: Store,
    day: int,
    customer_ids: list[int],
    *,
    template: str | None = None,
    exclusion: str | None = "sent",
    not_before: str | None = None,
) -> None:
    """One email row per customer; ``exclusion`` is the status of the Klaviyo exclusion-list
    row it waits for (None: no such row)."""
    now = now_iso()
    rows: list[dict[str, Any]] = []
    for cid in customer_ids:
        after = None if exclusion is None else f"{PLAN_NAME}:{day}:225:{cid}"
        if after is not None:
            rows.append(
                {
                    "key": after,
                    "day": day,
                    "node_id": "225",
                    "kind": "webhook",
                    "provider": "klaviyo",
                    "customer_id": cid,
                    "payload": "{}",
                    "status": exclusion,
                    "not_before": None,
                    "after_key": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        email = customers.email_for_id(store.conn, cid)
        rows.append(
            {
                "key": email_key(day, cid),
                "day": day,
                "node_id": "email",
                "kind": "email",
                "provider": "new",
                "customer_id": cid,
                "payload": json.dumps({"template": template or f"day-{day:02d}", "email": email}),
                "status": "pending",
                "not_before": not_before,
                "after_key": after,
                "created_at": now,
                "updated_at": now,
            }
        )
    store.db["outbox"].insert_all(rows)


def statuses(store: Store, day: int | None = None) -> dict[str, int]:
    sql = "SELECT status, count(*) FROM outbox WHERE kind = 'email'"
    params: tuple[Any, ...] = ()
    if day is not None:
        sql += " AND day = ?"
        params = (day,)
    return dict(store.conn.execute(sql + " GROUP BY status", params).fetchall())


def email_of(store: Store) -> Callable[[int], str | None]:
    """An opaque token names a customer by store id: look the email up as `warmup serve` does."""

    def lookup(customer_id: int) -> str | None:
        row = store.conn.execute("SELECT email FROM customers WHERE id = ?", (customer_id,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    return lookup
