"""The outbox and Klaviyo list aggregates on a real SQLite store: the rules their operations
carry (a held email, a withdrawn consent, a bounce's three writes, another plan's members)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from warmup.dispatch.email import SharedOutboxWriter
from warmup.errors import StoreError
from warmup.store import Store, open_store
from warmup.store.lists import KlaviyoLists, members_in_store
from warmup.store.outbox import (
    BOUNCED,
    CANCELLED,
    EMAIL_STATUSES,
    LIST_CHANGE_STATUSES,
    ON_HOLD,
    PENDING,
    SENDING,
    SENT,
    UNCERTAIN,
    HardBounce,
    Outbox,
)

NOW = "2026-12-01T09:00:00+00:00"


def customer(store: Store, email: str) -> int:
    # customers arrive through an import; a test needs only the row
    cursor = store.conn.execute(
        "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?)",
        (email, NOW, NOW),
    )
    return int(cursor.lastrowid or 0)


def row(
    store: Store,
    key: str,
    customer_id: int,
    *,
    day: int = 1,
    kind: str = "email",
    status: str = PENDING,
    after: str | None = None,
    error: str | None = None,
    payload: str = "{}",
) -> int:
    # the engine writes a day's rows set-based (its own seam); here one at a time
    cursor = store.conn.execute(
        "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, status, "
        "last_error, after_key, created_at, updated_at) VALUES (?, ?, 'n', ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)",
        (
            key,
            day,
            kind,
            "new" if kind == "email" else "klaviyo",
            customer_id,
            payload,
            status,
            error,
            after,
            NOW,
            NOW,
        ),
    )
    return int(cursor.lastrowid or 0)


def status_of(store: Store, key: str) -> tuple[str, str | None]:
    status, error = store.conn.execute(
        "SELECT status, last_error FROM outbox WHERE key = ?", (key,)
    ).fetchone()
    return str(status), error


def test_email_held_by_an_on_hold_exclusion_is_not_unsent_and_is_cancelled_later(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "s.db")
    held, free = customer(store, "held@example.com"), customer(store, "free@example.com")
    row(store, "w:held", held, kind="webhook", status=ON_HOLD, error="Klaviyo: bad profile")
    row(store, "w:free", free, kind="webhook", status=SENT)
    row(store, "e:held", held, after="w:held")
    row(store, "e:free", free, after="w:free")
    outbox = Outbox(store)

    assert outbox.unsent_email(before=2) == {1: 1}  # only the free customer's email counts
    assert outbox.cancel_held_email(before=2) == 1
    status, error = status_of(store, "e:held")
    assert status == CANCELLED
    assert error is not None and "day 2 ran" in error and "Klaviyo: bad profile" in error
    assert status_of(store, "e:free") == (PENDING, None)
    assert outbox.progress(1) == (3, 4)  # sent, on hold, cancelled of four


def test_a_claim_refuses_a_withdrawn_consent_and_a_row_not_sendable(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    kept, gone = customer(store, "kept@example.com"), customer(store, "gone@example.com")
    store.conn.execute(
        "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
        "VALUES (?, 'email', 'unsubscribed', ?, 'test')",
        (gone, NOW),
    )
    ok, withdrawn = row(store, "e:kept", kept), row(store, "e:gone", gone)
    uncertain = row(store, "e:unsure", kept, status=UNCERTAIN)
    outbox = Outbox(store)

    assert outbox.claim_email(ok, NOW, (PENDING,)) is True
    assert outbox.claim_email(ok, NOW, (PENDING,)) is False  # already sending
    assert outbox.claim_email(withdrawn, NOW, (PENDING,)) is False
    assert outbox.claim_email_batch([uncertain], NOW, (PENDING,)) == [False]
    assert outbox.claim_email_batch([uncertain], NOW, (PENDING, UNCERTAIN)) == [True]
    assert outbox.cancel_withdrawn_email(1, NOW) == 1
    assert status_of(store, "e:gone") == (CANCELLED, "email consent withdrawn before sending")
    outbox.unclaim_email([ok, uncertain], NOW)
    assert status_of(store, "e:kept")[0] == status_of(store, "e:unsure")[0] == PENDING


def test_a_hard_bounce_records_its_event_and_suppresses_the_address(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    who = customer(store, "bounce@example.com")
    row_id = row(store, "e:bounce", who, status=SENDING)
    bounce = HardBounce("e:bounce", who, "bounce@example.com", 1, '{"code": 550}')

    Outbox(store).finish_email(row_id, BOUNCED, NOW, "550 no such user", bounce=bounce)

    assert status_of(store, "e:bounce") == (BOUNCED, "550 no such user")
    events = store.conn.execute("SELECT source, type, customer_id FROM events").fetchall()
    assert events == [("smtp", "hard_bounced", who)]
    consent = store.conn.execute("SELECT status, source FROM consents").fetchall()
    assert consent == [("suppressed", "hard_bounce")]
    assert Outbox(store).email_backlog()["bounced"] == 1


def test_a_failed_bounce_write_leaves_the_row_as_it_was(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    who = customer(store, "x@example.com")
    row_id = row(store, "e:x", who, status=SENDING)
    # a customer id that does not exist: the consent write breaks the foreign key
    bounce = HardBounce("e:x", who + 1000, "x@example.com", 1, "{}")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        Outbox(store).finish_email(row_id, BOUNCED, NOW, "550", bounce=bounce)
    assert status_of(store, "e:x") == (SENDING, None)
    assert store.conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_only_released_email_is_read_and_backlogs_name_every_status(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    a, b = customer(store, "a@example.com"), customer(store, "b@example.com")
    row(store, "w:a", a, kind="webhook", status=SENT)
    row(store, "w:b", b, kind="webhook", status=PENDING)
    row(store, "e:a", a, after="w:a")
    row(store, "e:b", b, after="w:b")
    outbox = Outbox(store)

    pages = list(outbox.released_email(1, (PENDING,), ("id", "email", "first_name")))
    assert [[r["key"] for r in page] for page in pages] == [["e:a"]]
    assert pages[0][0]["email"] == "a@example.com"
    backlog = outbox.email_backlog()
    assert set(EMAIL_STATUSES) <= set(backlog)
    assert backlog["blocked"] == 1  # e:b waits for its Klaviyo row
    lists = outbox.list_change_backlog()
    assert {s: lists[s] for s in LIST_CHANGE_STATUSES} == {
        "pending": 1,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "on_hold": 0,
    }


def test_the_email_writer_writes_through_a_store_of_each_worker_thread(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    first = row(store, "e:1", customer(store, "w@example.com"))
    second = row(store, "e:2", customer(store, "v@example.com"))
    writer = SharedOutboxWriter(store.path)
    seen: list[tuple[bool, int]] = []

    def worker(row_id: int) -> None:
        try:
            with writer.use() as outbox:
                # the store's pragmas apply to the writer's connections too
                (keys,) = outbox.conn.execute("PRAGMA foreign_keys").fetchone()
                claimed = outbox.claim_email(row_id, NOW, (PENDING,))
                seen.append((claimed, int(keys)))
        finally:
            writer.release()

    threads = [threading.Thread(target=worker, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [(True, 1), (True, 1)]
    assert status_of(store, "e:1")[0] == status_of(store, "e:2")[0] == SENDING


def test_list_members_and_another_plans_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    a, b = customer(store, "A@example.com"), customer(store, "b@example.com")
    lists = KlaviyoLists(store)
    with store.transaction():
        lists.add_members("L1", [a, b], NOW)
    lists.remove_members("L1", [b])
    assert lists.members("L1") == {a}
    lists.replace_members("L1", [b])
    assert lists.members("L1") == {b}
    lists.remember_resolved("exclusion:Warm-up", "Warm-up", "L1", created=True)
    assert lists.resolved("exclusion:Warm-up") == "L1"
    assert members_in_store(store.path, "L1") == {"b@example.com"}
    assert lists.forget_resolved() == [("Warm-up", "L1")]
    assert lists.resolved("exclusion:Warm-up") is None

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database")
    with pytest.raises(StoreError):
        members_in_store(broken, "L1")
