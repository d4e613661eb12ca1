"""The outbox aggregate: the durable queue between the engine and the dispatchers.

One row per action the engine decided, keyed ``plan:day:node:customer`` (the idempotency key):
an ``email`` row for the new provider, a ``webhook`` row for Klaviyo (a list change). The
statuses below are the outbox's whole vocabulary; every read and write of the table outside the
engine's set-based writing of a day's rows is a method of :class:`Outbox`.

An email row moves pending → sending → sent | bounced | failed (or back to pending with a
backoff), a row left ``sending`` by a dead run becomes ``uncertain``; a withdrawn consent or an
exclusion that never went through makes it ``cancelled``. A list change moves pending → sending
→ sent (read back from Klaviyo) | on_hold (Klaviyo refused that profile) | failed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from warmup.store.customers import attributes_sql
from warmup.store.database import Store, now_iso
from warmup.store.lists import PROFILE_FIELDS, profile_columns

# statuses
PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
FAILED: Final = "failed"
BOUNCED: Final = "bounced"
UNCERTAIN: Final = "uncertain"
ON_HOLD: Final = "on_hold"
CANCELLED: Final = "cancelled"

EMAIL_STATUSES: Final = (PENDING, SENDING, SENT, FAILED, BOUNCED, UNCERTAIN, CANCELLED)
LIST_CHANGE_STATUSES: Final = (PENDING, SENDING, SENT, FAILED, ON_HOLD)
# nothing more will happen to the row in this run (what a progress bar counts as done)
FINISHED: Final = (SENT, BOUNCED, FAILED, ON_HOLD, UNCERTAIN, CANCELLED)

# kinds, and the providers rows go to
EMAIL: Final = "email"
WEBHOOK: Final = "webhook"
NEW: Final = "new"
KLAVIYO: Final = "klaviyo"

# The payload of a day's bulk row of a node: its day and node's one in `outbox_payloads`
# (migration 013). Reads that need payloads read the `outbox_rows` view, which puts it back.
SHARED_PAYLOAD: Final = ""

_WITHDRAWN = "('unsubscribed', 'suppressed')"
_EMAIL_PAGE = 500
# A result write the server rolled back for a deadlock is run again, this many times at most.
_CONFLICT_TRIES = 3
_LIST_CHANGE = f"kind = '{WEBHOOK}' AND provider = '{KLAVIYO}'"

# An email held back by its customer's exclusion-list row that Klaviyo refused for that profile
# (on hold): it can only go out once someone fixes the data, and never after its day.
_HELD_BY_KLAVIYO = (
    f"e.after_key IN (SELECT key FROM outbox WHERE kind = '{WEBHOOK}' AND status = '{ON_HOLD}')"
)


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


@dataclass
class ListChange:
    """A Klaviyo list-change row with its customer's profile (:data:`PROFILE_FIELDS`)."""

    id: int
    day: int
    customer_id: int
    payload: dict[str, Any]
    profile: dict[str, Any]


@dataclass(frozen=True)
class HardBounce:
    """What a hard bounce records besides the row's status: the event, and the address made
    unmailable."""

    key: str
    customer_id: int
    recipient: str
    day: int
    # the provider's reply as JSON (code, reply, message id)
    detail: str


class Outbox:
    """The outbox table of ``store``, on SQLite or PostgreSQL. Methods that write one statement
    run in autocommit (or inside the caller's ``backend.transaction()``); those that write
    several open their own."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Either engine: every statement here is portable SQL with ``?`` placeholders.
        self.db = store.backend

    @property
    def conn(self) -> sqlite3.Connection:
        """The sqlite3 connection, on a SQLite store only (its pragmas, for tests)."""
        return self.store.conn

    # a day's progress and the rules between days ----------------------------------------------
    def progress(self, day: int) -> tuple[int, int]:
        """(finished, total) rows of ``day``: what a progress bar shows while they drain."""
        total, done = self.db.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN status IN "
            f"({_marks(FINISHED)}) THEN 1 ELSE 0 END), 0) FROM outbox "
            "WHERE day = ?",
            (*FINISHED, day),
        ).fetchone()
        return int(done), int(total)

    def unsent_email_of_day(self, day: int) -> int:
        """Email rows of ``day`` still ``pending`` or ``sending``, held ones included."""
        row = self.db.execute(
            f"SELECT count(*) FROM outbox WHERE day = ? AND kind = '{EMAIL}' "
            f"AND status IN ('{PENDING}', '{SENDING}')",
            (day,),
        ).fetchone()
        return int(row[0])

    def unsent_email(self, before: int | None = None) -> dict[int, int]:
        """Email rows still ``pending`` or ``sending`` that running their day again can send,
        per day (only days before ``before``); rows held by an on-hold Klaviyo row are not
        counted."""
        rows = self.db.execute(
            f"SELECT e.day, count(*) FROM outbox e WHERE e.kind = '{EMAIL}' "
            f"AND e.status IN ('{PENDING}', '{SENDING}') AND e.day < ? "
            f"AND NOT {_HELD_BY_KLAVIYO} GROUP BY e.day ORDER BY e.day",
            (before if before is not None else 1 << 62,),
        )
        return {int(day): int(n) for day, n in rows}

    def cancel_held_email(self, before: int) -> int:
        """Cancel earlier days' email still held back by an on-hold Klaviyo row, as day
        ``before`` starts; the reason stays on the row. Returns how many."""
        with self.db.transaction():
            cursor = self.db.execute(
                f"UPDATE outbox AS e SET status = '{CANCELLED}', updated_at = ?, last_error = "
                "'cancelled when day ' || CAST(? AS TEXT) || ' ran: its Klaviyo exclusion "
                "never went through ('"
                " || coalesce((SELECT w.last_error FROM outbox w WHERE w.key = e.after_key), '')"
                " || ')' "
                f"WHERE e.kind = '{EMAIL}' AND e.status = '{PENDING}' AND e.day < ? "
                f"AND {_HELD_BY_KLAVIYO}",
                (now_iso(), before, before),
            )
        return int(cursor.rowcount)

    # email: the drain ---------------------------------------------------------------------------
    def recover_sending_email(self, now: str) -> int:
        """Rows a dead run left in ``sending`` have an unknown outcome: ``uncertain``. A row
        a live ``warmup worker`` is handing over (its lease not passed) is left alone."""
        with self.db.transaction():
            return int(
                self.db.execute(
                    f"UPDATE outbox SET status = '{UNCERTAIN}', updated_at = ?, last_error = "
                    "'the run died while this message was being handed to the provider' "
                    f"WHERE kind = '{EMAIL}' AND status = '{SENDING}' "
                    "AND (lease_until IS NULL OR lease_until < ?)",
                    (now, now),
                ).rowcount
            )

    def cancel_withdrawn_email(self, day: int, now: str) -> int:
        """Cancel ``day``'s unsent email to customers whose email consent was withdrawn."""
        with self.db.transaction():
            return int(
                self.db.execute(
                    f"UPDATE outbox SET status = '{CANCELLED}', updated_at = ?, last_error = "
                    "'email consent withdrawn before sending' "
                    f"WHERE kind = '{EMAIL}' AND day = ? "
                    f"AND status IN ('{PENDING}', '{UNCERTAIN}') AND customer_id IN (SELECT "
                    "customer_id FROM consents WHERE channel = 'email' "
                    f"AND status IN {_WITHDRAWN})",
                    (now, day),
                ).rowcount
            )

    def released_email(
        self, day: int, statuses: Sequence[str], customer_fields: Sequence[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """``day``'s email rows for the new provider in ``statuses`` whose ``after_key`` row is
        sent, with their customer's ``customer_fields`` and ``attributes``, a page at a time in
        id order. Each page is read when the previous one has been consumed, so rows released
        meanwhile (a Klaviyo read-back on another thread) are found."""
        columns = ", ".join(f"c.{name}" for name in customer_fields if name != "id")
        sql = (
            "SELECT o.id, o.key, o.node_id, o.payload, o.attempts, o.not_before, o.customer_id, "
            f"{columns}, {attributes_sql(self.db.dialect)} AS attributes "
            "FROM outbox_rows o JOIN customers c ON c.id = o.customer_id "
            "LEFT JOIN outbox dep ON dep.key = o.after_key "
            f"WHERE o.kind = '{EMAIL}' AND o.provider = '{NEW}' AND o.day = ? AND o.id > ? "
            f"AND o.status IN ({_marks(statuses)}) "
            f"AND (o.after_key IS NULL OR dep.status = '{SENT}') ORDER BY o.id LIMIT {_EMAIL_PAGE}"
        )
        last_id = 0
        while True:
            cursor = self.db.execute(sql, (day, last_id, *statuses))
            rows = cursor.fetchall()
            if not rows:
                return
            names = [d[0] for d in cursor.description]
            page = [dict(zip(names, values, strict=True)) for values in rows]
            last_id = page[-1]["id"]
            yield page

    def next_email_retry(self, day: int) -> str | None:
        """When the earliest of ``day``'s email rows waiting to be tried again falls due."""
        row = self.db.execute(
            f"SELECT min(not_before) FROM outbox WHERE kind = '{EMAIL}' AND provider = '{NEW}' "
            f"AND day = ? AND status = '{PENDING}' AND attempts > 0",
            (day,),
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def _claim_sql(self, sendable: Sequence[str]) -> str:
        return (
            f"UPDATE outbox SET status = '{SENDING}', updated_at = ? WHERE id = ? "
            f"AND status IN ({_marks(sendable)}) AND NOT EXISTS (SELECT 1 FROM consents k WHERE "
            "k.customer_id = outbox.customer_id AND k.channel = 'email' "
            f"AND k.status IN {_WITHDRAWN})"
        )

    def claim_email(self, row_id: int, now: str, sendable: Sequence[str]) -> bool:
        """Move the row to ``sending`` right before its hand-over, if it is still in
        ``sendable`` and its customer's consent still stands (committed on its own)."""
        sql = self._claim_sql(sendable)
        return int(self.db.execute(sql, (now, row_id, *sendable)).rowcount) == 1

    def claim_email_batch(
        self, row_ids: Sequence[int], now: str, sendable: Sequence[str]
    ) -> list[bool]:
        """:meth:`claim_email` for one request's rows, in one transaction."""
        sql = self._claim_sql(sendable)
        with self.db.transaction():
            return [
                int(self.db.execute(sql, (now, row_id, *sendable)).rowcount) == 1
                for row_id in row_ids
            ]

    def finish_email(
        self,
        row_id: int,
        status: str,
        now: str,
        error: str | None = None,
        not_before: str | None = None,
        bounce: HardBounce | None = None,
    ) -> None:
        """Record an attempt's outcome; a ``bounce`` also stores its event and suppresses the
        address, all in one transaction. On PostgreSQL it locks only the rows it writes, so
        workers record their results side by side, not one at a time."""
        for attempt in range(_CONFLICT_TRIES):
            try:
                with self.db.row_transaction():
                    self._finish(row_id, status, now, error, not_before, bounce)
                return
            except self.db.conflicts:
                # Rolled back whole: a consent change crossed this bounce's suppression.
                if attempt == _CONFLICT_TRIES - 1:
                    raise

    def _finish(
        self,
        row_id: int,
        status: str,
        now: str,
        error: str | None,
        not_before: str | None,
        bounce: HardBounce | None,
    ) -> None:
        self.db.execute(
            # The lease ends with the attempt: a retry is anyone's once it falls due.
            "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, "
            "not_before = coalesce(?, not_before), updated_at = ?, lease_until = NULL "
            "WHERE id = ?",
            (status, error, not_before, now, row_id),
        )
        if bounce is None:
            return
        self.db.execute(
            "INSERT INTO events (source, event_id, type, customer_id, "
            "email, day, occurred_at, received_at, payload) "
            "VALUES ('smtp', ?, 'hard_bounced', ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, event_id) DO NOTHING",
            (
                bounce.key,
                bounce.customer_id,
                bounce.recipient,
                bounce.day,
                now,
                now,
                bounce.detail,
            ),
        )
        # A hard bounce makes the address unmailable, as Klaviyo's HARD_BOUNCE
        # suppression does: no later day allocates it to either provider.
        self.db.execute(
            "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
            "VALUES (?, 'email', 'suppressed', ?, 'hard_bounce') "
            "ON CONFLICT(customer_id, channel) DO UPDATE SET status = 'suppressed', "
            "changed_at = excluded.changed_at, source = excluded.source "
            "WHERE consents.status != 'suppressed'",
            (bounce.customer_id, now),
        )

    def sent_email_batch(self, row_ids: Sequence[int], now: str) -> None:
        """One request's accepted rows: ``sent`` together, in one transaction (row locks only,
        as :meth:`finish_email`)."""
        with self.db.row_transaction():
            self.db.executemany(
                f"UPDATE outbox SET status = '{SENT}', attempts = attempts + 1, "
                "last_error = NULL, updated_at = ? WHERE id = ?",
                [(now, row_id) for row_id in row_ids],
            )

    def unclaim_email(self, row_ids: Sequence[int], now: str) -> None:
        """Rows whose hand-over was refused as a whole after the claim: certainly not sent,
        so ``pending`` again (not ``uncertain``)."""
        sql = (
            f"UPDATE outbox SET status = '{PENDING}', updated_at = ? WHERE id = ? "
            f"AND status = '{SENDING}'"
        )
        if len(row_ids) == 1:
            self.db.execute(sql, (now, row_ids[0]))
            return
        with self.db.transaction():
            self.db.executemany(sql, [(now, row_id) for row_id in row_ids])

    def email_left(self, day: int) -> tuple[int, int]:
        """``day``'s email rows still (pending, uncertain) after a drain."""
        counts = dict(
            self.db.execute(
                f"SELECT status, count(*) FROM outbox WHERE kind = '{EMAIL}' AND day = ? "
                f"AND status IN ('{PENDING}', '{UNCERTAIN}') GROUP BY status",
                (day,),
            ).fetchall()
        )
        return int(counts.get(PENDING, 0)), int(counts.get(UNCERTAIN, 0))

    def email_backlog(self) -> dict[str, Any]:
        """Email rows by status over all days, plus ``blocked`` (pending behind an unconfirmed
        Klaviyo exclusion) and up to 20 ``uncertain_keys`` — for ``warmup status``."""
        counts = dict.fromkeys(EMAIL_STATUSES, 0)
        for status, n in self.db.execute(
            f"SELECT status, count(*) FROM outbox WHERE kind = '{EMAIL}' GROUP BY status"
        ):
            counts[str(status)] = int(n)
        blocked = self.db.execute(
            "SELECT count(*) FROM outbox o JOIN outbox dep ON dep.key = o.after_key "
            f"WHERE o.kind = '{EMAIL}' AND o.status = '{PENDING}' AND dep.status != '{SENT}'"
        ).fetchone()[0]
        uncertain = [
            str(k)
            for (k,) in self.db.execute(
                f"SELECT key FROM outbox WHERE kind = '{EMAIL}' AND status = '{UNCERTAIN}' "
                "ORDER BY id LIMIT 20"
            )
        ]
        return {**counts, "blocked": int(blocked), "uncertain_keys": uncertain}

    # Klaviyo list changes -----------------------------------------------------------------------
    def list_changes(
        self, day: int, statuses: Sequence[str], after: int = 0, limit: int | None = None
    ) -> list[ListChange]:
        """List changes of ``day`` and earlier in ``statuses``, in id order, with the customer's
        profile (its Klaviyo id only once confirmed); a page: ids above ``after``, at most
        ``limit`` (None: all)."""
        found = []
        # A day's rows share a handful of payloads (the node's settings): one dict each, not one
        # per row, which at 85,000 rows of a 100k warm-up's last day was ~60 MB.
        payloads: dict[str, dict[str, Any]] = {}
        for row in self.db.execute(
            f"SELECT o.id, o.day, o.customer_id, o.payload, {profile_columns('c')} "
            "FROM outbox_rows o JOIN customers c ON c.id = o.customer_id "
            f"WHERE o.kind = '{WEBHOOK}' AND o.provider = '{KLAVIYO}' AND o.day <= ? "
            f"AND o.status IN ({_marks(statuses)}) AND o.id > ? ORDER BY o.id"
            + ("" if limit is None else f" LIMIT {int(limit)}"),
            (day, *statuses, after),
        ):
            payload = payloads.get(row[3])
            if payload is None:
                payload = payloads[row[3]] = json.loads(row[3])
            profile = dict(zip(PROFILE_FIELDS, row[4:], strict=True))
            found.append(ListChange(int(row[0]), int(row[1]), int(row[2]), payload, profile))
        return found

    def set_list_changes(
        self, row_ids: Sequence[int], status: str, error: str | None, stamp: str
    ) -> None:
        """One statement (see the class docstring): a move to ``sending`` counts an attempt."""
        self.db.executemany(
            "UPDATE outbox SET status = ?, last_error = ?, updated_at = ?, "
            f"attempts = attempts + CASE WHEN ? = '{SENDING}' THEN 1 ELSE 0 END WHERE id = ?",
            [(status, error, stamp, status, row_id) for row_id in row_ids],
        )

    def customers_listed_by(self, which: str, customer_ids: Collection[int]) -> set[int]:
        """Of ``customer_ids``, those with a list change to list ``which`` that was sent."""
        if not customer_ids:
            return set()
        return {
            int(c)
            for (c,) in self.db.execute(
                f"SELECT DISTINCT customer_id FROM outbox_rows WHERE {_LIST_CHANGE} "
                f"AND status = '{SENT}' AND {self.db.json_text('payload', 'list')} = ? "
                f"AND customer_id IN ({_marks(customer_ids)})",
                (which, *customer_ids),
            )
        }

    def failed_list_changes(self, day: int) -> int:
        """List changes of ``day`` and earlier still ``failed``."""
        (n,) = self.db.execute(
            f"SELECT count(*) FROM outbox WHERE {_LIST_CHANGE} AND status = '{FAILED}' "
            "AND day <= ?",
            (day,),
        ).fetchone()
        return int(n)

    def list_change_backlog(self, limit: int = 50) -> dict[str, Any]:
        """List changes by status, and the failed and on-hold ones (up to ``limit``) with
        Klaviyo's message and the on-hold ones counted by reason (for ``warmup status``)."""
        counts = dict.fromkeys(LIST_CHANGE_STATUSES, 0)
        for status, n in self.db.execute(
            f"SELECT status, count(*) FROM outbox WHERE {_LIST_CHANGE} GROUP BY status"
        ):
            counts[str(status)] = int(n)
        attention = [
            {"key": key, "day": day, "email": email, "status": status, "error": error}
            for key, day, email, status, error in self.db.execute(
                "SELECT o.key, o.day, c.email, o.status, o.last_error FROM outbox o "
                f"LEFT JOIN customers c ON c.id = o.customer_id WHERE o.kind = '{WEBHOOK}' "
                f"AND o.provider = '{KLAVIYO}' AND o.status IN ('{FAILED}', '{ON_HOLD}') "
                "ORDER BY o.id LIMIT ?",
                (limit,),
            )
        ]
        held_by_reason = {
            str(reason): int(n)
            for reason, n in self.db.execute(
                "SELECT coalesce(last_error, 'no reason recorded'), count(*) FROM outbox "
                f"WHERE {_LIST_CHANGE} AND status = '{ON_HOLD}' GROUP BY 1 ORDER BY 2 DESC, 1"
            )
        }
        return {**counts, "attention": attention, "held_by_reason": held_by_reason}

    def latest_list_change_day(self) -> int | None:
        """The latest day with Klaviyo rows (None before any)."""
        row = self.db.execute(
            f"SELECT max(day) FROM outbox WHERE provider = '{KLAVIYO}'"
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def expected_in_exclusion(self, days: Collection[int]) -> list[tuple[str, int, bool]]:
        """Customers ``days`` allocated to the new provider: (email, id, held), ``held`` when
        an exclusion-list change of theirs on one of those days is not sent yet."""
        return [
            (str(email), int(cid), bool(held))
            for email, cid, held in self.db.execute(
                "SELECT c.email, c.id, min((SELECT count(*) FROM outbox_rows o "
                "WHERE o.customer_id = c.id AND o.day = a.day "
                f"AND o.kind = '{WEBHOOK}' AND o.provider = '{KLAVIYO}' AND "
                f"{self.db.json_text('o.payload', 'list')} = 'exclusion' "
                f"AND o.status != '{SENT}')) "
                "FROM allocations a JOIN customers c ON c.id = a.customer_id "
                f"WHERE a.day IN ({_marks(days)}) AND a.provider = '{NEW}' GROUP BY c.id",
                tuple(days),
            )
        ]

    def expected_in_unsubscribe(self, day: int) -> list[tuple[str, int, bool]]:
        """Customers with an unsubscribe-list change on ``day`` or earlier: (email, id, held),
        ``held`` when none of those changes is sent yet."""
        return [
            (str(email), int(cid), bool(held))
            for email, cid, held in self.db.execute(
                "SELECT c.email, c.id, "
                f"min(CASE WHEN o.status != '{SENT}' THEN 1 ELSE 0 END) FROM outbox_rows o "
                f"JOIN customers c ON c.id = o.customer_id WHERE o.kind = '{WEBHOOK}' "
                f"AND o.provider = '{KLAVIYO}' AND {self.db.json_text('o.payload', 'list')} = "
                "'unsubscribe' AND o.day <= ? GROUP BY c.id",
                (day,),
            )
        ]
