"""The engine's one query-building seam: the SQL fragments and statements its set-based
evaluation is made of. Node types, the walker and the evaluator compose these instead of
writing SQL of their own, so another backend changes this module, not the node types.

Every customer test reads ``c`` (the ``customers`` row) and ``e`` (its email ``consents`` row,
LEFT JOINed, so it may be NULL); a customer without a consent row is ``never_subscribed``, as in
Klaviyo. This module imports nothing from ``warmup.plan``: node types load before the plan.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

SqlPart = tuple[str, list[Any]]

# The one rule no scenario can override: these customers are never allocated to anyone.
SAFE = (
    "(COALESCE(e.status, 'never_subscribed') NOT IN ('unsubscribed', 'suppressed') "
    "AND c.email_valid = 1)"
)
CUSTOMER_JOIN = (
    "JOIN customers c ON c.id = {alias}.customer_id "
    "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email'"
)
OUTBOX_COLUMNS = (
    "INSERT OR IGNORE INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
    "status, not_before, after_key, created_at, updated_at) "
)


def case(test: str, yes: str, no: str) -> str:
    return f"(CASE WHEN {test} THEN {yes} ELSE {no} END)"


def all_of(parts: Sequence[str]) -> str:
    return "(" + " AND ".join(parts) + ")"


def placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def consent_status(channel: str) -> str:
    """The customer's consent status on ``channel`` (email is the joined ``e`` row)."""
    if channel == "email":
        return "e.status"
    return (
        f"(SELECT s.status FROM consents s WHERE s.customer_id = c.id AND s.channel = '{channel}')"
    )


def consent_in(channel: str, statuses: Sequence[str]) -> SqlPart:
    return (
        f"COALESCE({consent_status(channel)}, 'never_subscribed') IN ({placeholders(statuses)})",
        list(statuses),
    )


def in_segment(segment: str) -> SqlPart:
    return (
        "EXISTS (SELECT 1 FROM segment_members m WHERE m.segment = ? AND m.customer_id = c.id)",
        [segment],
    )


def allocated_new_on(days: Sequence[int]) -> SqlPart:
    """Allocated to the new provider on one of ``days`` (false when there are none)."""
    if not days:
        return "0", []
    marks = ", ".join(str(int(d)) for d in days)
    return (
        "EXISTS (SELECT 1 FROM allocations a WHERE a.customer_id = c.id "
        f"AND a.provider = 'new' AND a.day IN ({marks}))"
    ), []


def attribute_equals(key: str, value: object) -> SqlPart:
    return "json_extract(c.attributes, ?) = ?", ['$."' + key.replace('"', '\\"') + '"', value]


def test_one(conn: sqlite3.Connection, test: SqlPart, customer_id: int) -> bool:
    """A branch test for one customer (the event flows walk one customer at a time)."""
    sql, params = test
    row = conn.execute(
        f"SELECT {sql} FROM customers c LEFT JOIN consents e ON e.customer_id = c.id "
        "AND e.channel = 'email' WHERE c.id = ?",
        [*params, customer_id],
    ).fetchone()
    return bool(row and row[0])


PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")


def insert_webhooks(
    conn: sqlite3.Connection,
    settings: dict[str, Any],
    *,
    node_id: str,
    key_prefix: str,
    day: int,
    source: str,
    params: list[Any],
    not_before: str | None,
    now: str,
    with_profile: bool = True,
) -> int:
    """One webhook outbox row per customer ``source`` yields (a FROM clause with ``c`` bound to
    ``customers``, or with ``with_profile=False`` to anything with an ``id`` column); the key is
    ``key_prefix`` + customer id.

    The payload holds the node's ``settings`` and, ``with_profile``, a copy of the customer's
    profile (``PROFILE_FIELDS``) for whoever reads the row. The dispatcher reads the profile
    from ``customers`` when it sends, so the day's bulk rows leave the copy out: building it
    per customer was most of the cost of writing them."""
    if with_profile:
        fields = ", ".join(f"'{name}', c.{name}" for name in PROFILE_FIELDS)
        payload_sql = f"json_object('list', ?, 'template', ?, 'batch_size', ?, {fields})"
        payload_params: list[Any] = list(settings.values())
    else:
        payload_sql = "?"
        payload_params = [json.dumps(settings, separators=(",", ":"))]
    cursor = conn.execute(
        f"{OUTBOX_COLUMNS}SELECT ? || c.id, ?, ?, 'webhook', 'klaviyo', c.id, {payload_sql}, "
        f"'pending', ?, NULL, ?, ? {source}",
        [key_prefix, day, node_id, *payload_params, not_before, now, now, *params],
    )
    return cursor.rowcount


def insert_emails(
    conn: sqlite3.Connection,
    *,
    node_id: str,
    key_prefix: str,
    day: int,
    template: str,
    where: str,
    params: list[Any],
    not_before: str | None,
    after: str | None,
    now: str,
) -> int:
    """One email outbox row per customer of the day's journeys matching ``where`` who is
    allocated to the new provider today and still mailable (``SAFE``) now."""
    cursor = conn.execute(
        f"{OUTBOX_COLUMNS}SELECT ? || c.id, ?, ?, 'email', 'new', c.id, ?, 'pending', ?, "
        "CASE WHEN ? IS NULL THEN NULL ELSE ? || c.id END, ?, ? "
        "FROM journeys j JOIN allocations a ON a.day = j.day AND a.customer_id = j.customer_id "
        "AND a.provider = 'new' JOIN customers c ON c.id = j.customer_id "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email' "
        f"WHERE j.day = ? AND {where} AND {SAFE} ORDER BY j.customer_id",
        [
            key_prefix,
            day,
            node_id,
            json.dumps({"template": template}, separators=(",", ":")),
            not_before,
            after,
            after,
            now,
            now,
            day,
            *params,
        ],
    )
    return cursor.rowcount


def allocated_on_paths(conn: sqlite3.Connection, day: int, where: str, params: list[Any]) -> int:
    """Customers of the day's journeys matching ``where`` allocated to the new provider."""
    row = conn.execute(
        f"SELECT count(*) FROM journeys j WHERE j.day = ? AND j.outcome = 'new' AND {where}",
        [day, *params],
    ).fetchone()
    return int(row[0])


def mark_unmailed_skipped(
    conn: sqlite3.Connection, day: int, where: str, params: list[Any], key_prefix: str
) -> None:
    """Allocated customers on these paths without an email row become ``skipped``."""
    conn.execute(
        "UPDATE journeys SET outcome = 'skipped' WHERE day = ? AND outcome = 'new' AND "
        f"customer_id IN (SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {where}) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = ? || journeys.customer_id)",
        [day, day, *params, key_prefix],
    )


def reject_consent(
    conn: sqlite3.Connection,
    ids_sql: str,
    params: list[Any],
    *,
    channel: str,
    source: str,
    now: str,
) -> int:
    """Unsubscribe the customers ``ids_sql`` selects (one ``customer_id`` column). Customers
    already unsubscribed are left alone, so running it twice records one change.

    The store's ``consents_history`` trigger records changes of existing consent rows; only a
    customer without one gets their ``consent_changes`` row here."""
    conn.execute(
        "INSERT INTO consent_changes (customer_id, channel, old_status, new_status, changed_at, "
        "source) SELECT x.customer_id, ?, s.status, 'unsubscribed', ?, ? "
        f"FROM ({ids_sql}) x LEFT JOIN consents s ON s.customer_id = x.customer_id "
        "AND s.channel = ? WHERE s.status IS NULL",
        [channel, now, source, *params, channel],
    )
    cursor = conn.execute(
        "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
        f"SELECT x.customer_id, ?, 'unsubscribed', ?, ? FROM ({ids_sql}) x WHERE true "
        "ON CONFLICT (customer_id, channel) DO UPDATE SET status = 'unsubscribed', "
        "changed_at = excluded.changed_at, source = excluded.source "
        "WHERE consents.status <> 'unsubscribed'",
        [channel, now, source, *params],
    )
    return cursor.rowcount
