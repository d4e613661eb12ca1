"""Fixtures for the Klaviyo tests: a plan pointing at a sandbox, customers, allocations and the
engine's outbox rows written directly (the engine's contract, without running the engine)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tests.support import plans
from warmup.plan import LoadedPlan, load_plan
from warmup.providers.klaviyo import KlaviyoClient, RetryPolicy
from warmup.store import Store, now_iso
from warmup.store.backends import Backend

KEY_ENV = "KLAVIYO_TEST_KEY"


def write_plan(
    tmp: Path,
    base_url: str,
    *,
    exclusion: str = '{name: "Warmup exclusions"}',
    list_mode: str = "force_add",
    unsubscribe_via_api: bool = False,
) -> LoadedPlan:
    """The example plan against the sandbox at ``base_url``, with its list settings."""
    edits = {
        "https://a.klaviyo.com": base_url,
        "api_key_env: KLAVIYO_API_KEY": f"api_key_env: {KEY_ENV}",
        'exclusion_list: {name: "Warmup exclusions"}': f"exclusion_list: {exclusion}",
        "list_mode: force_add": (
            f"list_mode: {list_mode}\n    unsubscribe_via_api: {str(unsubscribe_via_api).lower()}"
        ),
    }
    return load_plan(plans.write_plan(tmp, edits=edits))


def fast_client(base_url: str, api_key: str, **kwargs: object) -> KlaviyoClient:
    retry = RetryPolicy(base_delay=0.01, max_delay=0.2, timeout=5)
    return KlaviyoClient(base_url, api_key, rate_scale=100, retry=retry, **kwargs)  # type: ignore[arg-type]


def add_customers(
    store: Store, n: int, *, start: int = 0, phones: dict[int, str] | None = None
) -> list[int]:
    now = now_iso()
    ids = list(range(start + 1, start + n + 1))
    store.backend.executemany(
        "INSERT INTO customers (id, email, phone, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(i, f"c{i}@example.com", (phones or {}).get(i), now, now) for i in ids],
    )
    store.backend.after_bulk_load("customers")
    return ids


def plan_day(store: Store, day: int, new: Iterable[int], everyone: Iterable[int]) -> None:
    """The engine's output for a day: allocations and one exclusion webhook row per new one."""
    new = set(new)
    now = now_iso()
    db = store.backend
    with db.transaction():
        db.execute(
            "INSERT INTO days (day, date, status) VALUES (?, ?, 'running') "
            "ON CONFLICT (day) DO UPDATE SET date = excluded.date, status = excluded.status",
            (day, f"2020-01-{day:02d}"),
        )
        db.executemany(
            "INSERT INTO allocations (day, customer_id, provider) VALUES (?, ?, ?)",
            [(day, cid, "new" if cid in new else "klaviyo") for cid in everyone],
        )
        write_webhooks(db, day, "225", "exclusion", sorted(new), now)


def reject(store: Store, day: int, customers: Iterable[int]) -> None:
    with store.backend.transaction():
        write_webhooks(store.backend, day, "297", "unsubscribe", sorted(customers), now_iso())


def write_webhooks(
    db: Backend, day: int, node: str, which: str, customers: list[int], now: str
) -> None:
    """The engine's rows, their payload the node's settings and the customer's profile."""
    profiles = {
        int(row[0]): row[1:]
        for row in db.execute(
            "SELECT id, email, klaviyo_id, phone, external_id, first_name, last_name FROM customers"
        ).fetchall()
    }
    fields = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")
    rows = []
    for cid in customers:
        payload = {
            "list": which,
            "template": "klaviyo/add-profiles-to-list.json.j2",
            "batch_size": 1000,
            **dict(zip(fields, profiles[cid], strict=True)),
        }
        key = f"test:{day}:{node}:{cid}"
        rows.append((key, day, node, cid, json.dumps(payload), now, now))
    db.executemany(
        "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
        "status, created_at, updated_at) VALUES (?, ?, ?, 'webhook', 'klaviyo', ?, ?, "
        "'pending', ?, ?) ON CONFLICT (key) DO NOTHING",
        rows,
    )


def statuses(store: Store) -> dict[str, int]:
    return {
        str(status): int(n)
        for status, n in store.backend.execute(
            "SELECT status, count(*) FROM outbox WHERE kind = 'webhook' GROUP BY status"
        )
    }


def payload(store: Store, key: str) -> dict[str, object]:
    row = store.backend.execute("SELECT payload FROM outbox_rows WHERE key = ?", (key,)).fetchone()
    return dict(json.loads(row[0]))
