"""An event is booked to the day of the exact mail it is about when its payload names the mail
(SendGrid's warmup_key, SES's Message-ID), even while that mail's row is still `sending`."""

from __future__ import annotations

from pathlib import Path

from tests.support.consent import add_customers, add_mail
from warmup.email.message import message_id_for
from warmup.events import IncomingEvent, record_events
from warmup.store import Store, open_store


def _store(tmp_path: Path) -> tuple[Store, int]:
    store = open_store(tmp_path / "plan.db")
    cid = add_customers(store, ["ann@example.com"])["ann@example.com"]
    add_mail(store, 1, [cid], created_at="2026-12-01T09:00:00+00:00")
    # day 2's mail is being handed over when its delivery event arrives
    add_mail(store, 2, [cid], status="sending", created_at="2026-12-02T09:00:00+00:00")
    return store, cid


def _day(store: Store, event_id: str) -> int:
    (day,) = store.conn.execute("SELECT day FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return int(day)


def test_the_payloads_message_goes_to_its_own_day(tmp_path: Path) -> None:
    store, cid = _store(tmp_path)
    at = "2026-12-02T09:00:05Z"
    key = f"t:2:email:{cid}"
    try:
        record_events(
            store,
            [
                IncomingEvent("sg", "delivered", "ann@example.com", at, {"warmup_key": key}),
                IncomingEvent(
                    "ses",
                    "delivered",
                    "ann@example.com",
                    at,
                    {"message_id": message_id_for(key, "send.example.com")},
                ),
                # no message named: the latest mail handed over before the event, as before
                IncomingEvent("csv", "delivered", "ann@example.com", at),
                # a message id of no row of the customer's: the same fallback
                IncomingEvent("other", "delivered", "ann@example.com", at, {"warmup_key": "x"}),
            ],
            source="new",
        )
        assert [_day(store, e) for e in ("sg", "ses", "csv", "other")] == [2, 2, 1, 1]
    finally:
        store.close()
