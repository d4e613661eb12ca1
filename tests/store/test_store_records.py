"""The store's consents, events and customers operations on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from warmup.store import Store, consents, customers, now_iso, open_store
from warmup.store import events as stored_events

T0 = "2026-12-01T09:00:00+00:00"
T1 = "2026-12-01T10:00:00+00:00"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store.db")
    yield opened
    opened.close()


def person(store: Store, email: str, status: str) -> int:
    with store.transaction() as conn:
        cid = customers.add(conn, email, at=T0)
        consents.set_status(conn, cid, status, changed_at=T0, source="test", keep=())
    return cid


def history(store: Store) -> list[tuple[str, str, str]]:
    return [
        (str(old), str(new), str(source))
        for old, new, source in store.conn.execute(
            "SELECT old_status, new_status, source FROM consent_changes ORDER BY id"
        )
    ]


@pytest.mark.parametrize(
    ("before", "new", "keep", "unless", "after"),
    [
        # the Klaviyo pull and a provider's hard bounce: a withdrawal stays as it is
        ("subscribed", "unsubscribed", consents.WITHDRAWN, (), "unsubscribed"),
        ("unsubscribed", "suppressed", consents.WITHDRAWN, (), "unsubscribed"),
        ("suppressed", "unsubscribed", consents.WITHDRAWN, (), "suppressed"),
        # an import: never resubscribes, but a suppression overrides an unsubscribe
        ("unsubscribed", "subscribed", consents.WITHDRAWN, ("suppressed",), "unsubscribed"),
        ("unsubscribed", "suppressed", consents.WITHDRAWN, ("suppressed",), "suppressed"),
        ("never_subscribed", "subscribed", consents.WITHDRAWN, ("suppressed",), "subscribed"),
        # an SMTP hard bounce keeps only a suppression
        ("unsubscribed", "suppressed", ("suppressed",), (), "suppressed"),
    ],
)
def test_one_upsert_keeps_what_each_writer_must_not_undo(
    store: Store, before: str, new: str, keep: tuple[str, ...], unless: tuple[str, ...], after: str
) -> None:
    cid = person(store, "ann@example.com", before)
    with store.transaction() as conn:
        conn.execute(
            consents.upsert_sql("VALUES (?, 'email', ?, ?, 'writer')", keep=keep, unless=unless),
            (cid, new, T1),
        )
    assert consents.status_of(store.conn, cid) == {"email": after}
    assert history(store) == ([] if after == before else [(before, after, "writer")])


def test_setting_the_same_status_again_records_no_change(store: Store) -> None:
    cid = person(store, "ann@example.com", "subscribed")
    with store.transaction() as conn:
        first = consents.set_status(
            conn, cid, "unsubscribed", changed_at=T1, source="a", keep=consents.WITHDRAWN
        )
        second = consents.set_status(conn, cid, "unsubscribed", changed_at=T1, source="b", keep=())
    assert (first, second) == (True, False)
    assert history(store) == [("subscribed", "unsubscribed", "a")]


def test_an_unknown_status_is_refused_before_any_sql() -> None:
    with pytest.raises(ValueError, match="subscribd"):
        consents.upsert_sql("VALUES (?, ?, ?, ?, ?)", keep=("subscribd",))


def test_an_event_is_stored_once_per_source_and_id(store: Store) -> None:
    cid = person(store, "ann@example.com", "subscribed")
    event = stored_events.Event("new", "e1", "delivered", cid, "ann@example.com", 1, T0, T1)
    with store.transaction() as conn:
        assert stored_events.insert(conn, event)
        assert not stored_events.insert(conn, event)
        assert stored_events.insert(
            conn, stored_events.Event("smtp", "e1", "delivered", cid, None, 1, T0, T1)
        )
    assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_customers_by_email_and_id(store: Store) -> None:
    cid = person(store, "ann@example.com", "subscribed")
    assert customers.id_for_email(store.conn, "ann@example.com") == cid
    assert customers.id_for_email(store.conn, "bob@example.com") is None
    assert customers.email_for_id(store.conn, cid) == "ann@example.com"
    assert customers.email_for_id(store.conn, cid + 1) is None


def test_the_store_writes_every_instant_in_one_format() -> None:
    prague = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 1, 10, 5, 7, 999_999, tzinfo=prague)
    assert now_iso(moment) == "2026-12-01T09:05:07+00:00"
    assert datetime.fromisoformat(now_iso()).tzinfo == UTC
