"""Generated stores and plans for engine tests: customers inserted directly with SQL."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.support import plans
from tests.support.plans import REPO
from warmup.store import open_store

NOW = "2026-11-20T00:00:00+00:00"
STATUSES = (
    "subscribed",
    "subscribed",
    "subscribed",
    "never_subscribed",
    "unsubscribed",
    "suppressed",
)


def write_plan(
    folder: Path,
    *,
    variant: int = 1,
    days: list[object] | None = None,
    templates: list[str] | None = None,
    skip_dates: list[str] | None = None,
    skip_weekdays: list[str] | None = None,
    store: Path | None = None,
    scenario: Path | None = None,
    edits: dict[str, str] | None = None,
) -> Path:
    """A plan file using the repo's scenario and templates; Klaviyo points at a closed port."""
    volumes = days or [5, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, "all"]
    names = templates or [f"day-{i:02d}" for i in range(1, len(volumes) + 1)]
    rows = "\n".join(
        f"    - {{day: {i}, new: {json.dumps(v)}, template: {names[i - 1]}}}"
        for i, v in enumerate(volumes, start=1)
    )
    text = f"""name: engine-test
timezone: Europe/Prague
start_date: 2026-12-01
scenario: {scenario or f"{REPO}/scenarios/variant-{variant}.yaml"}
templates: {REPO}/templates
{f"store: {store}" if store else ""}
sender: {{from: "Test <t@send.example>"}}
providers:
  new: {{kind: file, directory: {folder}/eml}}
  klaviyo:
    base_url: http://127.0.0.1:9
    exclusion_list: {{name: "Warmup exclusions"}}
    unsubscribe_list: {{name: "Warmup unsubscribes"}}
schedule:
  send_time: "10:00"
  skip_weekdays: {json.dumps(skip_weekdays or [])}
  skip_dates: {json.dumps(skip_dates or [])}
  days:
{rows}
"""
    return plans.write_plan(folder, base=text, edits=edits, name=f"plan-v{variant}.yaml")


def fill_store(
    path: Path,
    n: int,
    *,
    seed: int = 0,
    segment: str = "engaged-90",
    statuses: tuple[str, ...] = STATUSES,
) -> None:
    """``n`` customers with mixed consent, validity, segment membership and engagement."""
    rng = random.Random(seed)
    store = open_store(path)
    customers, consents, members = [], [], []
    for i in range(1, n + 1):
        engaged = (
            None
            if rng.random() < 0.2
            else f"2026-{rng.randint(1, 11):02d}-"
            f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+00:00"
        )
        customers.append(
            (
                i,
                f"user{i}@example.com",
                int(rng.random() > 0.03),
                f"+42060{i:07d}" if rng.random() < 0.5 else None,
                f"K{i:08d}",
                f"Name{i}",
                engaged,
                NOW,
                NOW,
            )
        )
        consents.append((i, rng.choice(statuses), NOW))
        if rng.random() < 0.9:
            members.append((segment, i, NOW))
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO customers (id, email, email_valid, phone, klaviyo_id, "
            "first_name, last_engaged_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            customers,
        )
        conn.executemany("INSERT INTO consents VALUES (?, 'email', ?, ?, 'test')", consents)
        conn.executemany("INSERT INTO segment_members VALUES (?, ?, ?)", members)
    store.close()


def unsubscribe_event(path: Path, customer_id: int, event_id: str, day: int | None) -> None:
    store = open_store(path)
    store.conn.execute(
        "INSERT INTO events (source, event_id, type, customer_id, day, occurred_at, received_at)"
        " VALUES ('consent', ?, 'unsubscribed', ?, ?, ?, ?)",
        (event_id, customer_id, day, NOW, NOW),
    )
    store.close()


def table(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    store = open_store(path)
    try:
        return [tuple(r) for r in store.conn.execute(sql, params)]
    finally:
        store.close()
