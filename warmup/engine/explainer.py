"""Why a customer was or was not mailed on a day: their journey, node by node, with reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from warmup.clock import show
from warmup.engine.nodes import type_of
from warmup.engine.nodes.base import Facts
from warmup.engine.paths import label_between
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan
from warmup.store import consents, customers, days, journeys, open_store
from warmup.store.backends import Backend

OUTCOMES = {
    "ended": "not allocated today: the walk ended before the allocation; the new provider "
    "does not mail them",
    "never_allocated": "never allocated: unsubscribed, suppressed or invalid email",
    "new": "allocated to the new provider",
    "klaviyo": "stays with Klaviyo today",
    "skipped": "allocated to the new provider but not mailed: no longer mailable when the "
    "email was written",
}


@dataclass
class Explanation:
    email: str
    day: int
    lines: list[str] = field(default_factory=list)
    outcome: str = ""

    def render(self) -> str:
        return "\n".join(
            [f"{self.email} on day {self.day}:", *self.lines, f"outcome: {self.outcome}"]
        )

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "day": self.day, "steps": self.lines, "outcome": self.outcome}


def explain(loaded: LoadedPlan, day: int, email: str) -> Explanation:
    store = open_store(loaded.store_path, create=False)
    try:
        return _explain(loaded, store.backend, day, email.strip().lower())
    finally:
        store.close()


def _explain(loaded: LoadedPlan, conn: Backend, day: int, email: str) -> Explanation:
    conn.name_rows()
    customer = customers.row_by_email(conn, email)
    if customer is None:
        raise InvalidInput(
            f"no customer {email} in the store of {loaded.name}",
            hint="check the address, or import the export that holds it",
        )
    result = Explanation(email, day)
    day_row = days.day_row(conn, day)
    journey = journeys.journey_row(conn, day, int(customer["id"]))
    if journey is None:
        result.outcome = (
            f"day {day} has not run yet"
            if day_row is None
            else f"day {day} is {day_row['status']}: the allocation has not run yet, "
            "so no journey is recorded"
        )
        return result
    nodes = loaded.scenario.by_id
    path = json.loads(journey["path"])
    facts = Facts(
        loaded, conn, day, customer, consents.status_of(conn, customer["id"]), journey, day_row
    )
    for index, node_id in enumerate(path):
        node = nodes.get(node_id)
        if node is None:
            result.lines.append(f"#{node_id} (no longer in the scenario)")
            continue
        label = (
            label_between(node, path[index + 1]) if index + 1 < len(path) else journey["last_label"]
        )
        reason = type_of(node).explain(node, facts, label)
        head = f"#{node.id} {node.type}" + (f" · {node.title}" if node.title else "")
        result.lines.append(f"{head}: {reason}" if reason else head)
    result.outcome = OUTCOMES.get(journey["outcome"], journey["outcome"] or "")
    if journey["due_at"]:
        due = show(journey["due_at"], loaded.plan.timezone)
        result.outcome += f"; parked at #{journey['node']} until {due}"
    return result
