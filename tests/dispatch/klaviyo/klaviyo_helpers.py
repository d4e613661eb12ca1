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
    store.db["customers"].insert_all(
        {
            "id": i,
            "email": f"c{i}@example.com",
            "phone": (phones or {}).get(i),
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    )
    return ids


def plan_day(store: Store, day: int, new: Iterable[int], everyone: Iterable[int]) -> None:
    """The engine's output for a day: allocations and one exclusion webhook row per new one."""
    new = set(new)
    now = now_iso()
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO days (day, date, status) VALUES (?, ?, 'running')",
            (day, f"2020-01-{day:02d}"),
        )
        conn.executemany(
            "INSERT INTO allocations (day, customer_id, provider) VALUES (?, ?, ?)",
            [(day, cid, "new" if cid in new else "klaviyo") for cid in everyone],
        )
        write_webhooks(conn, day, "225", "exclusion", sorted(new), now)


def reject(store: Store, day: int, customers: Iterable[int]) -> None:
    with store.transaction() as conn:
        write_webhooks(conn, day, "297", "unsubscribe", sorted(customers), now_iso())


def write_webhooks(
    conn: object, day: int, node: str, which: str, customers: list[int], now: str
) -> None:
    conn.executemany(  # type: ignore[attr-defined]
        "INSERT OR IGNORE INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
        "status, created_at, updated_at) SELECT ?, ?, ?, 'webhook', 'klaviyo', c.id, "
        "json_object('list', ?, 'template', 'klaviyo/add-profiles-to-list.json.j2', "
        "'batch_size', 1000, 'email', c.email, 'klaviyo_id', c.klaviyo_id, 'phone', c.phone, "
        "'external_id', c.external_id, 'first_name', c.first_name, 'last_name', c.last_name), "
        "'pending', ?, ? FROM customers c WHERE c.id = ?",
        [(f"test:{day}:{node}:{cid}", day, node, which, now, now, cid) for cid in customers],
    )


def statuses(store: Store) -> dict[str, int]:
    return dict(
        store.conn.execute(
            "SELECT status, count(*) FROM outbox WHERE kind = 'webhook' GROUP BY status"
        )
    )


def payload(store: Store, key: str) -> dict[str, object]:
    row = store.conn.execute("SELECT payload FROM outbox WHERE key = ?", (key,)).fetchone()
    return dict(json.loads(row[0]))
