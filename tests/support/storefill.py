"""Generated stores for engine tests: customers, consents and segment members inserted through
sqlite-utils' table API (named columns, nothing to keep in step with the schema by hand)."""

from __future__ import annotations

import json
import random
from contextlib import closing
from pathlib import Path

import pendulum

from tests.support import plans
from tests.support.plans import REPO
from warmup.store import events, open_store
from warmup.store.events import Event

NOW = "2026-11-20T00:00:00+00:00"
STATUSES = (
    "subscribed",
    "subscribed",
    "subscribed",
    "never_subscribed",
    "unsubscribed",
    "suppressed",
)


def at(hhmm: str, day: str = "2026-12-01") -> pendulum.DateTime:
    """A moment of the test plans' first day (or ``day``) on their clock (Europe/Prague)."""
    return pendulum.parse(f"{day}T{hhmm}", tz="Europe/Prague")  # type: ignore[return-value]


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
    customers: list[dict[str, object]] = []
    consents: list[dict[str, object]] = []
    members: list[dict[str, object]] = []
    for i in range(1, n + 1):
        engaged = (
            None
            if rng.random() < 0.2
            else f"2026-{rng.randint(1, 11):02d}-"
            f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+00:00"
        )
        customers.append(
            {
                "id": i,
                "email": f"user{i}@example.com",
                "email_valid": int(rng.random() > 0.03),
                "phone": f"+42060{i:07d}" if rng.random() < 0.5 else None,
                "klaviyo_id": f"K{i:08d}",
                "first_name": f"Name{i}",
                "last_engaged_at": engaged,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        consents.append(
            {
                "customer_id": i,
                "channel": "email",
                "status": rng.choice(statuses),
                "changed_at": NOW,
                "source": "test",
            }
        )
        if rng.random() < 0.9:
            members.append({"segment": segment, "customer_id": i, "added_at": NOW})
    db = store.db
    db["customers"].insert_all(customers)
    db["consents"].insert_all(consents)
    db["segment_members"].insert_all(members)
    store.close()


def unsubscribe_event(path: Path | str, customer_id: int, event_id: str, day: int | None) -> None:
    store = open_store(path)
    with store.backend.transaction():
        event = Event("consent", event_id, "unsubscribed", customer_id, None, day, NOW, NOW)
        events.insert(store.backend, event)
    store.close()


def table(path: Path | str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of a query on a store of either engine (a path or a postgresql:// URL)."""
    store = open_store(path)
    try:
        return [tuple(r) for r in store.backend.execute(sql, params)]
    finally:
        store.close()


def add_emails_due(
    location: Path | str, count: int, *, key: str, now: str, not_before: str | None = None
) -> None:
    """``count`` subscribed customers ``user{i}@example.com``, each with one pending day-1 email
    to the new provider (template ``day-01``), keyed ``{key}:1:email:{customer id}``; on either
    engine."""
    with closing(open_store(location)) as store:
        db = store.backend
        with db.transaction():
            for i in range(count):
                email = f"user{i}@example.com"
                (cid,) = db.execute(
                    "INSERT INTO customers (email, first_name, created_at, updated_at) "
                    "VALUES (?, 'Jana', ?, ?) RETURNING id",
                    (email, now, now),
                ).fetchone()
                db.execute(
                    "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
                    "VALUES (?, 'email', 'subscribed', ?, 'test')",
                    (cid, now),
                )
                db.execute(
                    "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, "
                    "payload, not_before, created_at, updated_at) "
                    "VALUES (?, 1, 'email', 'email', 'new', ?, ?, ?, ?, ?)",
                    (
                        f"{key}:1:email:{cid}",
                        cid,
                        json.dumps({"template": "day-01", "email": email}),
                        not_before,
                        now,
                        now,
                    ),
                )
