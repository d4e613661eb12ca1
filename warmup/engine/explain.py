"""Why a customer was or was not mailed on a day: their journey, node by node, with reasons."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from warmup.clock import show
from warmup.engagement.explain import condition_fact, score_fact
from warmup.engine.paths import UNSAFE, label_between
from warmup.engine.predicates import past_days
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan
from warmup.plan.scenario import (
    AudienceNode,
    ConditionNode,
    EmailNode,
    Node,
    WaitNode,
    WebhookNode,
)
from warmup.store import open_store

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
        return _explain(loaded, store.conn, day, email.strip().lower())
    finally:
        store.close()


def _explain(loaded: LoadedPlan, conn: sqlite3.Connection, day: int, email: str) -> Explanation:
    conn.row_factory = sqlite3.Row
    customer = conn.execute("SELECT * FROM customers WHERE email = ?", (email,)).fetchone()
    if customer is None:
        raise InvalidInput(
            f"no customer {email} in the store of {loaded.name}",
            hint="check the address, or import the export that holds it",
        )
    result = Explanation(email, day)
    day_row = conn.execute("SELECT * FROM days WHERE day = ?", (day,)).fetchone()
    journey = conn.execute(
        "SELECT * FROM journey_rows WHERE day = ? AND customer_id = ?", (day, customer["id"])
    ).fetchone()
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
    consents = dict(
        conn.execute(
            "SELECT channel, status FROM consents WHERE customer_id = ?", (customer["id"],)
        ).fetchall()
    )
    for index, node_id in enumerate(path):
        node = nodes.get(node_id)
        if node is None:
            result.lines.append(f"#{node_id} (no longer in the scenario)")
            continue
        label = (
            label_between(node, path[index + 1]) if index + 1 < len(path) else journey["last_label"]
        )
        reason = _reason(loaded, conn, node, label, day, customer, consents, journey, day_row)
        head = f"#{node.id} {node.type}" + (f" · {node.title}" if node.title else "")
        result.lines.append(f"{head}: {reason}" if reason else head)
    result.outcome = OUTCOMES.get(journey["outcome"], journey["outcome"] or "")
    if journey["due_at"]:
        due = show(journey["due_at"], loaded.plan.timezone)
        result.outcome += f"; parked at #{journey['node']} until {due}"
    return result


def _reason(
    loaded: LoadedPlan,
    conn: sqlite3.Connection,
    node: Node,
    label: str,
    day: int,
    customer: sqlite3.Row,
    consents: dict[str, str],
    journey: sqlite3.Row,
    day_row: sqlite3.Row | None,
) -> str:
    arrow = f"→ {label}" if label in ("yes", "no") else ""
    if isinstance(node, ConditionNode):
        facts = []
        if node.consent is not None:
            facts.append(f"consent {consents.get(node.consent.channel, 'never_subscribed')}")
        if node.email_valid is not None:
            facts.append("valid email" if customer["email_valid"] else "invalid email")
        if node.has_phone is not None:
            facts.append("has a phone" if customer["phone"] else "no phone")
        if node.attribute_equals:
            attrs = json.loads(customer["attributes"] or "{}")
            facts += [f"{k} = {attrs.get(k)!r}" for k in node.attribute_equals]
        if node.engagement is not None:
            stored = day_row["date"] if day_row is not None else None
            facts.append(condition_fact(loaded, conn, node.engagement, customer["id"], day, stored))
        return f"{', '.join(facts)} {arrow}"
    if isinstance(node, AudienceNode):
        return _audience_reason(loaded, conn, node, label, day, customer, journey, day_row)
    if isinstance(node, WaitNode):
        due = (
            show(journey["due_at"], loaded.plan.timezone)
            if journey["node"] == node.id and journey["due_at"]
            else None
        )
        what = f"until {node.until}" if node.until else f"{node.duration}"
        return f"wait {what}" + (f" — parked until {due}" if due else "")
    if isinstance(node, WebhookNode | EmailNode):
        row = conn.execute(
            "SELECT key, status FROM outbox WHERE day = ? AND node_id = ? AND customer_id = ?",
            (day, node.id, customer["id"]),
        ).fetchone()
        if row is None:
            return "no outbox row"
        return f"outbox {row['key']}: {row['status']}"
    return ""


def _audience_reason(
    loaded: LoadedPlan,
    conn: sqlite3.Connection,
    node: AudienceNode,
    label: str,
    day: int,
    customer: sqlite3.Row,
    journey: sqlite3.Row,
    day_row: sqlite3.Row | None,
) -> str:
    arrow = f"→ {label}" if label in ("yes", "no") else ""
    if node.source == "segment":
        member = conn.execute(
            "SELECT 1 FROM segment_members WHERE segment = ? AND customer_id = ?",
            (node.segment, customer["id"]),
        ).fetchone()
        return f"{'member' if member else 'not a member'} of {node.segment} {arrow}"
    if node.source in ("past_audience", "exclusion_list"):
        days = (
            past_days(loaded.plan, day, node.template)
            if node.source == "past_audience"
            else [day - 1]
            if day > 1
            else []
        )
        got = [
            int(r[0])
            for r in conn.execute(
                "SELECT day FROM allocations WHERE customer_id = ? AND provider = 'new' "
                f"AND day IN ({','.join(str(d) for d in days) or '0'}) ORDER BY day",
                (customer["id"],),
            )
        ]
        if node.source == "exclusion_list":
            return f"{'in' if got else 'not in'} the exclusion list going into the day {arrow}"
        return (
            f"received the warm-up on day {', '.join(map(str, got))} {arrow}"
            if got
            else f"has not received it before {arrow}"
        )
    limit = int(day_row["new_limit"]) if day_row is not None and day_row["new_limit"] else 0
    rank = journey["rank"]
    if label == UNSAFE:
        return "never allocated: unsubscribed, suppressed or invalid email"
    if rank is None:
        return "allocation not run yet"
    score = score_fact(
        loaded, conn, customer["id"], day, day_row["date"] if day_row is not None else None
    )
    scored = f" ({score})" if score else ""
    if label == "yes" or journey["outcome"] in ("new", "skipped"):
        return f"limit: rank {rank:,}{scored} ≤ limit {limit:,} → new provider"
    return f"limit: rank {rank:,}{scored} > limit {limit:,} → stays with Klaviyo"
