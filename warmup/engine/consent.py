"""The consent_reject node: set a channel's consent to unsubscribed, with a change record."""

from __future__ import annotations

import sqlite3
from typing import Any


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
