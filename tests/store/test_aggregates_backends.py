"""The aggregates dispatch and ``warmup serve`` need (outbox, consents, events, days), the same
on SQLite and on a real PostgreSQL: each test runs on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing

import pytest

from warmup.store import Store, consents, days, events, open_store
from warmup.store.outbox import (
    CANCELLED,
    EMAIL,
    KLAVIYO,
    NEW,
    PENDING,
    SENDING,
    SENT,
    UNCERTAIN,
    WEBHOOK,
    HardBounce,
    Outbox,
)

NOW = "2026-12-01T00:00:00+00:00"
LATER = "2026-12-01T01:00:00+00:00"


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    with closing(open_store(store_location)) as opened:
        yield opened


def _customer(store: Store, email: str) -> int:
    row = store.backend.execute(
        "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
        (email, NOW, NOW),
    ).fetchone()
    return int(row[0])


def _row(
    store: Store,
    key: str,
    customer_id: int,
    *,
    day: int = 1,
    kind: str = EMAIL,
    provider: str = NEW,
    status: str = PENDING,
    payload: dict[str, str] | None = None,
    after_key: str | None = None,
) -> int:
    row = store.backend.execute(
        "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, status, "
        "after_key, created_at, updated_at) VALUES (?, ?, 'n', ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (
            key,
            day,
            kind,
            provider,
            customer_id,
            json.dumps(payload or {}),
            status,
            after_key,
            NOW,
            NOW,
        ),
    ).fetchone()
    return int(row[0])


def _status(store: Store, row_id: int) -> str:
    return str(
        store.backend.execute("SELECT status FROM outbox WHERE id = ?", (row_id,)).fetchone()[0]
    )


def test_email_claim_send_and_progress(store: Store) -> None:
    outbox = Outbox(store)
    a, b = _customer(store, "a@example.com"), _customer(store, "b@example.com")
    first, second = _row(store, "p:1:n:a", a), _row(store, "p:1:n:b", b)
    assert outbox.progress(1) == (0, 2)
    pages = list(outbox.released_email(1, (PENDING,), ("id", "email")))
    assert [[r["id"] for r in page] for page in pages] == [[first, second]]
    assert pages[0][0]["email"] == "a@example.com"
    assert outbox.claim_email_batch([first, second], NOW, (PENDING,)) == [True, True]
    # A row claimed once is not claimed again.
    assert outbox.claim_email(first, NOW, (PENDING,)) is False
    outbox.sent_email_batch([first], LATER)
    outbox.unclaim_email([second], LATER)
    assert (_status(store, first), _status(store, second)) == (SENT, PENDING)
    assert outbox.progress(1) == (1, 2)
    assert outbox.email_left(1) == (1, 0)
    assert outbox.unsent_email() == {1: 1}
    backlog = outbox.email_backlog()
    assert (backlog[SENT], backlog[PENDING], backlog["blocked"]) == (1, 1, 0)


def test_withdrawn_consent_stops_a_claim_and_cancels(store: Store) -> None:
    outbox = Outbox(store)
    a = _customer(store, "a@example.com")
    row = _row(store, "p:1:n:a", a)
    changed = consents.set_status(
        store.backend, a, consents.UNSUBSCRIBED, changed_at=NOW, source="serve", keep=()
    )
    assert changed
    # The same status again is no change (and no history row).
    assert not consents.set_status(
        store.backend, a, consents.UNSUBSCRIBED, changed_at=LATER, source="serve", keep=()
    )
    # A withdrawal is kept against a later subscribe.
    assert not consents.set_status(
        store.backend,
        a,
        consents.SUBSCRIBED,
        changed_at=LATER,
        source="import",
        keep=consents.WITHDRAWN,
    )
    assert consents.status_of(store.backend, a) == {"email": consents.UNSUBSCRIBED}
    assert outbox.claim_email(row, NOW, (PENDING,)) is False
    assert outbox.cancel_withdrawn_email(1, LATER) == 1
    assert _status(store, row) == CANCELLED


def test_hard_bounce_records_event_and_suppresses(store: Store) -> None:
    outbox = Outbox(store)
    a = _customer(store, "a@example.com")
    row = _row(store, "p:1:n:a", a)
    assert outbox.claim_email(row, NOW, (PENDING,))
    bounce = HardBounce("p:1:n:a", a, "a@example.com", 1, '{"code": 550}')
    outbox.finish_email(row, "bounced", LATER, error="550", bounce=bounce)
    # Recording the same bounce again stores its event once.
    outbox.finish_email(row, "bounced", LATER, error="550", bounce=bounce)
    assert consents.status_of(store.backend, a) == {"email": consents.SUPPRESSED}
    (n,) = store.backend.execute(
        "SELECT count(*) FROM events WHERE type = 'hard_bounced'"
    ).fetchone()
    assert n == 1
    assert events.mailed_day(store.backend, a, LATER) == 1
    assert events.day_counts(store.backend, before=2) == [events.DayCounts(1, 1, 1, 0, 0, 0)]
    assert events.email_progress(store.backend, 1) == (1, 1)


def test_events_stored_once_and_counted(store: Store) -> None:
    a = _customer(store, "a@example.com")
    event = events.Event("sendgrid", "e1", "unsubscribed", a, "a@example.com", 1, NOW, NOW)
    assert events.insert(store.backend, event)
    assert not events.insert(store.backend, event)
    assert events.unprocessed(store.backend, ("unsubscribed",)) == (1, NOW)


def test_list_changes_and_unsubscribe_rows(store: Store) -> None:
    outbox = Outbox(store)
    a, b = _customer(store, "a@example.com"), _customer(store, "b@example.com")
    exclusion = _row(
        store, "p:1:x:a", a, kind=WEBHOOK, provider=KLAVIYO, payload={"list": "exclusion"}
    )
    unsubscribe = _row(
        store, "p:1:u:b", b, kind=WEBHOOK, provider=KLAVIYO, payload={"list": "unsubscribe"}
    )
    held = _row(store, "p:1:n:a", a, after_key="p:1:x:a")
    assert [c.id for c in outbox.list_changes(1, (PENDING,))] == [exclusion, unsubscribe]
    assert consents.unsubscribe_rows_waiting_day(store.backend) == 1
    assert consents.unsubscribe_rows_unsent(store.backend) == (1, NOW)
    # The email waits for its exclusion row.
    assert list(outbox.released_email(1, (PENDING,), ("id", "email"))) == []
    outbox.set_list_changes([exclusion, unsubscribe], SENDING, None, NOW)
    outbox.set_list_changes([exclusion, unsubscribe], SENT, None, LATER)
    (attempts,) = store.backend.execute(
        "SELECT attempts FROM outbox WHERE id = ?", (exclusion,)
    ).fetchone()
    assert attempts == 1
    assert [
        r["id"] for page in outbox.released_email(1, (PENDING,), ("id", "email")) for r in page
    ] == [held]
    assert outbox.customers_listed_by("unsubscribe", [a, b]) == {b}
    assert outbox.expected_in_unsubscribe(1) == [("b@example.com", b, False)]
    assert consents.unsubscribe_rows_waiting_day(store.backend) is None
    assert outbox.latest_list_change_day() == 1
    assert outbox.failed_list_changes(1) == 0


def test_held_email_cancelled_with_its_reason(store: Store) -> None:
    outbox = Outbox(store)
    a = _customer(store, "a@example.com")
    _row(store, "p:1:x:a", a, kind=WEBHOOK, provider=KLAVIYO, status="on_hold")
    store.backend.execute("UPDATE outbox SET last_error = 'profile refused' WHERE key = 'p:1:x:a'")
    email = _row(store, "p:1:n:a", a, after_key="p:1:x:a")
    assert outbox.cancel_held_email(2) == 1
    (status, error) = store.backend.execute(
        "SELECT status, last_error FROM outbox WHERE id = ?", (email,)
    ).fetchone()
    assert status == CANCELLED
    assert error.startswith("cancelled when day 2 ran") and "profile refused" in error


def test_dead_run_sending_rows_become_uncertain(store: Store) -> None:
    outbox = Outbox(store)
    row = _row(store, "p:1:n:a", _customer(store, "a@example.com"), status=SENDING)
    assert outbox.recover_sending_email(LATER) == 1
    assert _status(store, row) == UNCERTAIN
    assert outbox.email_left(1) == (0, 1)
    assert outbox.email_backlog()["uncertain_keys"] == ["p:1:n:a"]


def test_days_and_runs(store: Store) -> None:
    db = store.backend
    with db.transaction():
        days.start(db, 1, "2026-12-01", started_at=NOW, forced_reason=None)
        run = days.add_run(db, 1, started_at=NOW, pid=123, argv="warmup run")
        days.record_allocation(db, 1, limit=10, new=8, klaviyo=2)
    second = days.add_run(db, 1, started_at=LATER, pid=124, argv="warmup run")
    assert second == run + 1
    assert days.allocation(db, 1) == (10, 8, 2)
    assert days.states(db)[1].frozen
    days.finish(db, 1, days.COMPLETED, LATER)
    days.finish_run(db, run, finished_at=LATER, outcome="completed")
    assert days.latest_day(db) == 1
    assert days.states(db)[1].status == days.COMPLETED
    assert days.volume_days(db) == {1: 1}


def test_a_failed_bounce_write_leaves_row_event_and_consent_as_they_were(store: Store) -> None:
    """The row, its event and the suppression are one transaction on either engine (on
    PostgreSQL one that takes row locks only)."""
    outbox = Outbox(store)
    a = _customer(store, "a@example.com")
    row = _row(store, "p:1:n:a", a, status=SENDING)
    # a customer id that does not exist: the consent write, the last of the three, breaks
    bounce = HardBounce("p:1:n:a", a + 1000, "a@example.com", 1, "{}")
    with pytest.raises(store.backend.errors):
        outbox.finish_email(row, "bounced", LATER, error="550", bounce=bounce)
    assert _status(store, row) == SENDING
    assert store.backend.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_a_workers_result_does_not_wait_for_the_writer_lock(postgres_url: str) -> None:
    """On PostgreSQL a worker records its result while another process holds the writer lock
    (a day being evaluated, a consent flow): the result locks only its own rows."""
    with closing(open_store(postgres_url)) as worker, closing(open_store(postgres_url)) as other:
        a = _customer(worker, "a@example.com")
        bounced, sent = _row(worker, "p:1:n:a", a, status=SENDING), _row(worker, "p:1:m:a", a)
        # waiting for the writer lock fails at once instead of hanging the test
        worker.backend.execute("SET lock_timeout = '2s'")
        with other.backend.transaction():
            bounce = HardBounce("p:1:n:a", a, "a@example.com", 1, '{"code": 550}')
            Outbox(worker).finish_email(bounced, "bounced", LATER, error="550", bounce=bounce)
            Outbox(worker).sent_email_batch([sent], LATER)
        assert (_status(worker, bounced), _status(worker, sent)) == ("bounced", SENT)
        assert consents.status_of(worker.backend, a) == {"email": consents.SUPPRESSED}
