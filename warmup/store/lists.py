"""The Klaviyo list-sync state: which list ids the plan's list names resolved to, which members
warmup itself added to each list, and which Klaviyo profile ids are confirmed.

The list changes themselves are outbox rows (:mod:`warmup.store.outbox`). ``klaviyo_members``
is what makes a cut-back or repair safe: only members warmup added are ever removed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from warmup.errors import StoreError
from warmup.store import days
from warmup.store.backends import is_postgres_url, open_backend
from warmup.store.database import Store, now_iso

# A customer as a Klaviyo list change carries them (the template's profile).
PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")

_ADD_MEMBER = (
    "INSERT INTO klaviyo_members (list_id, customer_id, added_at) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)


def profile_columns(alias: str) -> str:
    """:data:`PROFILE_FIELDS` of the customers table aliased ``alias``, in that order. An id from
    the import is not trusted for list calls (see migration 030): such customers join through a
    bulk import by email, which the job's completion confirms."""
    return ", ".join(
        f"CASE WHEN {alias}.klaviyo_id_confirmed != 0 THEN {alias}.klaviyo_id END"
        if name == "klaviyo_id"
        else f"{alias}.{name}"
        for name in PROFILE_FIELDS
    )


class KlaviyoLists:
    """Every read and write of ``klaviyo_lists``, ``klaviyo_members`` and the customers'
    confirmed Klaviyo ids."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Either engine: portable SQL with ``?`` placeholders.
        self.db = store.backend

    # list ids resolved from the plan's list names -------------------------------------------
    def resolved(self, ref: str) -> str | None:
        """The list id remembered for ``ref`` (``which:name``), if any."""
        row = self.db.execute("SELECT list_id FROM klaviyo_lists WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else str(row[0])

    def remember_resolved(self, ref: str, name: str, list_id: str, created: bool) -> None:
        self.db.execute(
            self.db.upsert_sql(
                "klaviyo_lists", ("ref", "name", "list_id", "created", "resolved_at"), ("ref",)
            ),
            (ref, name, list_id, int(created), now_iso()),
        )

    def forget_resolved(self) -> list[tuple[str, str]]:
        """Drop every remembered name → id; returns the (name, id) pairs forgotten."""
        with self.db.transaction():
            rows = self.db.execute(
                "SELECT name, list_id FROM klaviyo_lists ORDER BY ref"
            ).fetchall()
            self.db.execute("DELETE FROM klaviyo_lists")
        return [(str(name), str(list_id)) for name, list_id in rows]

    # members warmup added ---------------------------------------------------------------------
    def members(self, list_id: str) -> set[int]:
        """Customer ids warmup put in ``list_id`` (and saw there)."""
        return {
            int(c)
            for (c,) in self.db.execute(
                "SELECT customer_id FROM klaviyo_members WHERE list_id = ?", (list_id,)
            )
        }

    def add_members(self, list_id: str, customer_ids: Iterable[int], stamp: str) -> None:
        """One statement and no transaction of its own: callers write it together with the
        outbox rows it confirms."""
        self.db.executemany(
            _ADD_MEMBER,
            [(list_id, int(c), stamp) for c in customer_ids],
        )

    def remove_members(self, list_id: str, customer_ids: Iterable[int]) -> None:
        with self.db.transaction():
            self.db.executemany(
                "DELETE FROM klaviyo_members WHERE list_id = ? AND customer_id = ?",
                [(list_id, int(c)) for c in customer_ids],
            )

    def replace_members(self, list_id: str, customer_ids: Iterable[int]) -> None:
        """After a repair: the list's members are exactly ``customer_ids``."""
        stamp = now_iso()
        with self.db.transaction():
            self.db.execute("DELETE FROM klaviyo_members WHERE list_id = ?", (list_id,))
            self.db.executemany(
                _ADD_MEMBER,
                [(list_id, int(c), stamp) for c in customer_ids],
            )

    def members_not_allocated(
        self, list_id: str, days: Collection[int]
    ) -> list[tuple[int, str, str | None]]:
        """Members warmup added to ``list_id`` that none of ``days`` allocated to the new
        provider: (customer id, email, confirmed Klaviyo id or None)."""
        marks = ",".join("?" for _ in days)
        return [
            (int(cid), str(email), None if kid is None else str(kid))
            for cid, email, kid in self.db.execute(
                "SELECT m.customer_id, c.email, CASE WHEN c.klaviyo_id_confirmed != 0 "
                "THEN c.klaviyo_id END FROM klaviyo_members m "
                "JOIN customers c ON c.id = m.customer_id WHERE m.list_id = ? AND m.customer_id "
                f"NOT IN (SELECT customer_id FROM allocations WHERE day IN ({marks}) "
                "AND provider = 'new')",
                (list_id, *days),
            )
        ]

    # the customers' Klaviyo profiles ----------------------------------------------------------
    def confirm_ids(self, ids: Mapping[int, str]) -> None:
        """Klaviyo ids read back from Klaviyo itself (customer id → profile id): trusted for
        list calls from now on."""
        if ids:
            with self.db.transaction():
                self.db.executemany(
                    "UPDATE customers SET klaviyo_id = ?, klaviyo_id_confirmed = 1 WHERE id = ?",
                    [(kid, cid) for cid, kid in ids.items()],
                )

    def distrust_ids(self, customer_ids: Iterable[int]) -> None:
        """Klaviyo said these customers' ids do not exist: they join by email from now on."""
        with self.db.transaction():
            self.db.executemany(
                "UPDATE customers SET klaviyo_id_confirmed = 0 WHERE id = ?",
                [(int(c),) for c in customer_ids],
            )

    def customer_ids_by_email(self) -> dict[str, int]:
        """Every customer's id by lower-cased email."""
        return {
            str(e): int(i) for e, i in self.db.execute("SELECT lower(email), id FROM customers")
        }

    def profiles(self, customer_ids: Collection[int]) -> list[dict[str, Any]]:
        """The customers' :data:`PROFILE_FIELDS` as stored (ids unconfirmed or not)."""
        return [
            dict(zip(PROFILE_FIELDS, row, strict=True))
            for row in self.db.execute(
                f"SELECT {', '.join(PROFILE_FIELDS)} FROM customers WHERE id IN "
                f"({','.join(str(int(c)) for c in customer_ids)})"
            )
        ]

    # the days the lists follow ----------------------------------------------------------------
    def day_planned(self, day: int) -> bool:
        """The engine has allocated day ``day`` (or at least started it)."""
        allocated = self.db.execute(
            "SELECT 1 FROM allocations WHERE day = ? LIMIT 1", (day,)
        ).fetchone()
        return allocated is not None or days.day_row(self.db, day) is not None


def members_in_store(location: Path | str, list_id: str) -> set[str]:
    """Emails (lower case) the store at ``location`` — another plan's, a SQLite file or a
    PostgreSQL URL — added to ``list_id``. Read only: that store belongs to another plan and is
    never migrated or written from here. Raises :class:`StoreError` when it cannot be read."""
    sql = (
        "SELECT c.email FROM klaviyo_members m JOIN customers c "
        "ON c.id = m.customer_id WHERE m.list_id = ?"
    )
    if is_postgres_url(location):
        backend = open_backend(location)
        try:
            return {str(e).lower() for (e,) in backend.execute(sql, (list_id,))}
        except backend.errors as exc:
            raise StoreError(f"cannot read store {location}: {exc}") from None
        finally:
            backend.close()
    conn = sqlite3.connect(Path(location).as_uri() + "?mode=ro", uri=True)
    try:
        return {str(e).lower() for (e,) in conn.execute(sql, (list_id,))}
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read store {location}: {exc}") from None
    finally:
        conn.close()
