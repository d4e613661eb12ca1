"""Leased claims on email rows: how any number of ``warmup worker`` processes, on any hosts,
drain one outbox without sending a row twice.

A worker leases a batch of due rows (``claimed_by`` = it, ``lease_until`` = now + the lease),
in one statement that passes over rows another worker is leasing at that moment
(``FOR UPDATE … SKIP LOCKED`` on PostgreSQL; SQLite's one writer serialises the statement).
Right before a row's hand-over the worker moves it to ``sending`` — only if the lease is still
its own, so a row whose lease expired and went to another worker is never sent by both. A
worker that dies leaves two kinds of rows: leased but still ``pending`` (free again once the
lease passes; another worker sends them) and ``sending`` (the message may have left: once the
lease passes they become ``uncertain``, the outbox's documented rule, and are not re-sent).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from warmup.store.customers import attributes_sql
from warmup.store.database import Store
from warmup.store.outbox import CANCELLED, EMAIL, NEW, PENDING, SENDING, SENT, UNCERTAIN

# The customer of outbox row ``o`` withdrew: by their consent, or by an unsubscribe or complaint
# event a `warmup serve` replica stored that the consent flow has not turned into a consent yet
# (so a replica's unsubscribe stops the very next send, whichever replica took it).
_WITHDRAWN = (
    "(EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = {o}.customer_id "
    "AND k.channel = 'email' AND k.status IN ('unsubscribed', 'suppressed')) "
    "OR EXISTS (SELECT 1 FROM events v WHERE v.customer_id = {o}.customer_id "
    "AND v.type IN ('unsubscribed', 'complained')))"
)


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


class EmailLeases:
    """One worker's leases on the email rows of ``store``'s outbox."""

    def __init__(self, store: Store, worker: str) -> None:
        self.db = store.backend
        self.worker = worker

    def lease(
        self,
        day: int,
        sendable: Sequence[str],
        customer_fields: Sequence[str],
        *,
        now: str,
        until: str,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Lease up to ``limit`` of ``day``'s due rows (in ``sendable``, released by their
        ``after_key`` row, ``not_before`` passed, no live lease of anyone's), oldest first, and
        return them with their customer's ``customer_fields`` and ``attributes``."""
        pick = (
            "SELECT o.id FROM outbox o LEFT JOIN outbox dep ON dep.key = o.after_key "
            f"WHERE o.kind = '{EMAIL}' AND o.provider = '{NEW}' AND o.day = ? "
            f"AND o.status IN ({_marks(sendable)}) "
            "AND (o.lease_until IS NULL OR o.lease_until < ?) "
            "AND (o.not_before IS NULL OR o.not_before <= ?) "
            f"AND (o.after_key IS NULL OR dep.status = '{SENT}') "
            f"AND NOT {_WITHDRAWN.format(o='o')} "
            f"ORDER BY o.id LIMIT ?{self.db.skip_locked('o')}"
        )
        ids = [
            int(r[0])
            for r in self.db.execute(
                f"UPDATE outbox SET claimed_by = ?, lease_until = ? WHERE id IN ({pick}) "
                "AND (lease_until IS NULL OR lease_until < ?) RETURNING id",
                (self.worker, until, day, *sendable, now, now, limit, now),
            ).fetchall()
        ]
        if not ids:
            return []
        columns = ", ".join(f"c.{name}" for name in customer_fields if name != "id")
        cursor = self.db.execute(
            "SELECT o.id, o.key, o.node_id, o.payload, o.attempts, o.not_before, o.customer_id, "
            f"{columns}, {attributes_sql(self.db.dialect)} AS attributes "
            "FROM outbox_rows o JOIN customers c ON c.id = o.customer_id "
            f"WHERE o.id IN ({_marks(ids)}) ORDER BY o.id",
            ids,
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def claim(self, row_id: int, *, now: str, until: str, sendable: Sequence[str]) -> bool:
        """Move a leased row to ``sending`` right before its hand-over: only while the lease is
        this worker's and the customer's consent still stands. The ``sending`` row keeps a lease
        too, so that a worker dying mid-hand-over is noticed."""
        cursor = self.db.execute(
            f"UPDATE outbox SET status = '{SENDING}', updated_at = ?, lease_until = ? "
            f"WHERE id = ? AND claimed_by = ? AND status IN ({_marks(sendable)}) "
            f"AND NOT {_WITHDRAWN.format(o='outbox')}",
            (now, until, row_id, self.worker, *sendable),
        )
        return int(cursor.rowcount) == 1

    def cancel_withdrawn(self, day: int, *, now: str) -> int:
        """Cancel ``day``'s unsent email to customers who withdrew (see ``_WITHDRAWN``)."""
        cursor = self.db.execute(
            f"UPDATE outbox SET status = '{CANCELLED}', updated_at = ?, last_error = "
            "'email consent withdrawn before sending' "
            f"WHERE kind = '{EMAIL}' AND day = ? AND status IN ('{PENDING}', '{UNCERTAIN}') "
            f"AND {_WITHDRAWN.format(o='outbox')}",
            (now, day),
        )
        return int(cursor.rowcount)

    def expire(self, *, now: str) -> int:
        """Rows a dead worker left in ``sending`` (its lease passed): ``uncertain``."""
        cursor = self.db.execute(
            f"UPDATE outbox SET status = '{UNCERTAIN}', updated_at = ?, last_error = "
            "'worker ' || claimed_by || ' stopped while this message was being handed to the "
            f"provider' WHERE kind = '{EMAIL}' AND status = '{SENDING}' "
            "AND claimed_by IS NOT NULL AND lease_until < ?",
            (now, now),
        )
        return int(cursor.rowcount)

    def next_lease_end(self, day: int) -> str | None:
        """When the earliest live lease on ``day``'s unfinished email rows ends: a worker with
        nothing to lease waits for it, in case that worker died."""
        row = self.db.execute(
            f"SELECT min(lease_until) FROM outbox WHERE kind = '{EMAIL}' AND day = ? "
            f"AND status IN ('{PENDING}', '{SENDING}') AND lease_until IS NOT NULL",
            (day,),
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])
