"""Leased claims and the shared send budget, on SQLite and on a real PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing

import pytest

from warmup.store import Store, open_store
from warmup.store.budget import Backoff, SendBudget
from warmup.store.leases import EmailLeases
from warmup.store.outbox import PENDING, SENDING, UNCERTAIN, Outbox

NOW = "2026-12-01T00:00:00+00:00"
T1 = "2026-12-01T00:00:10+00:00"
T2 = "2026-12-01T00:00:20+00:00"
T3 = "2026-12-01T00:00:30+00:00"
FIELDS = ("id", "email")


@pytest.fixture
def stores(store_location: str) -> Iterator[tuple[Store, Store]]:
    """Two connections to one store: two workers."""
    with closing(open_store(store_location)) as one, closing(open_store(store_location)) as two:
        yield one, two


def add_rows(store: Store, count: int) -> list[int]:
    ids = []
    for i in range(count):
        (cid,) = store.backend.execute(
            "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
            (f"u{i}@example.com", NOW, NOW),
        ).fetchone()
        (rid,) = store.backend.execute(
            "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
            "created_at, updated_at) VALUES (?, 1, 'n', 'email', 'new', ?, ?, ?, ?) RETURNING id",
            (f"p:1:n:{cid}", cid, json.dumps({"template": "day-01"}), NOW, NOW),
        ).fetchone()
        ids.append(int(rid))
    return ids


def lease(leases: EmailLeases, now: str, until: str, limit: int = 10) -> list[int]:
    rows = leases.lease(1, (PENDING,), FIELDS, now=now, until=until, limit=limit)
    return [int(r["id"]) for r in rows]


def test_leases_are_disjoint_and_a_passed_lease_moves_on(stores: tuple[Store, Store]) -> None:
    one, two = stores
    ids = add_rows(one, 5)
    a, b = EmailLeases(one, "worker-a"), EmailLeases(two, "worker-b")
    first = lease(a, NOW, T1, limit=3)
    second = lease(b, NOW, T3)
    assert first == ids[:3] and second == ids[3:]
    assert lease(b, NOW, T3) == []
    # a's lease passes with its rows unsent: b takes them, and a can no longer claim them.
    assert lease(b, T2, T3) == ids[:3]
    assert not a.claim(ids[0], now=T2, until=T3, sendable=(PENDING,))
    assert b.claim(ids[0], now=T2, until=T3, sendable=(PENDING,))
    # A claimed row is not claimed twice, nor leased again.
    assert not b.claim(ids[0], now=T2, until=T3, sendable=(PENDING,))
    assert lease(a, "2026-12-01T00:00:40+00:00", "2026-12-01T00:01:00+00:00") == ids[1:]
    assert b.next_lease_end(1) == T3


def test_a_dead_workers_sending_row_becomes_uncertain(stores: tuple[Store, Store]) -> None:
    one, two = stores
    (row,) = add_rows(one, 1)
    a, b = EmailLeases(one, "worker-a"), EmailLeases(two, "worker-b")
    assert lease(a, NOW, T1) == [row]
    assert a.claim(row, now=NOW, until=T1, sendable=(PENDING,))
    # While the lease lives the row is a's: neither expiry nor a run's recovery touch it.
    assert b.expire(now=NOW) == 0
    assert Outbox(two).recover_sending_email(NOW) == 0
    assert b.expire(now=T2) == 1
    (status, error) = two.backend.execute(
        "SELECT status, last_error FROM outbox WHERE id = ?", (row,)
    ).fetchone()
    assert status == UNCERTAIN and "worker-a" in error
    assert lease(b, T2, T3) == []


def test_finishing_ends_the_lease(stores: tuple[Store, Store]) -> None:
    one, _ = stores
    (row,) = add_rows(one, 1)
    a = EmailLeases(one, "worker-a")
    lease(a, NOW, T3)
    assert a.claim(row, now=NOW, until=T3, sendable=(PENDING,))
    Outbox(one).finish_email(row, PENDING, NOW, error="421 try later", not_before=NOW)
    # A retry is anyone's as soon as it falls due, not after the old lease.
    assert lease(EmailLeases(one, "worker-b"), T1, T2) == [row]
    assert one.backend.execute("SELECT status FROM outbox").fetchone()[0] != SENDING


def test_send_budget_is_shared_across_connections(stores: tuple[Store, Store]) -> None:
    one, two = stores
    second = [1_000.2]
    a = SendBudget(one, "email:p", 3, clock=lambda: second[0])
    b = SendBudget(two, "email:p", 3, clock=lambda: second[0])
    assert [a.take(), b.take(), a.take()] == [True, True, True]
    assert not b.take() and not a.take()
    # Another plan's budget is its own.
    assert SendBudget(two, "email:q", 3, clock=lambda: second[0]).take()
    second[0] = 1_001.0
    assert b.take()
    slept: list[float] = []
    waiting = SendBudget(one, "email:p", 1, clock=lambda: second[0], sleep=slept.append)
    second[0] = 1_002.5
    waiting.wait()
    assert slept == []
    calls = iter([1_002.6, 1_002.6, 1_003.1])
    waiting.clock = lambda: next(calls)
    waiting.wait()
    assert slept == [pytest.approx(0.4)]


def test_skip_locked_passes_over_rows_another_worker_is_leasing(postgres_url: str) -> None:
    """PostgreSQL only: a lease in an open transaction does not block a second worker."""
    with closing(open_store(postgres_url)) as one, closing(open_store(postgres_url)) as two:
        ids = add_rows(one, 4)
        conn = one.backend.conn
        with conn.transaction():
            held = lease(EmailLeases(one, "worker-a"), NOW, T1, limit=2)
            # Not committed yet: worker b neither waits for those rows nor takes them.
            assert lease(EmailLeases(two, "worker-b"), NOW, T1) == ids[2:]
        assert held == ids[:2]


def test_a_throttled_answer_slows_every_worker_sharing_the_budget(
    stores: tuple[Store, Store],
) -> None:
    # SES throttled one worker: it halved its own pacer, and the other workers took up its
    # share, so SES still saw the full rate. The budget's pace is shared now.
    one, two = stores
    backoff = Backoff(floor=1 / 32, recovery=0.1, quiet=2.0, same_burst=1.0)
    at = [1_000.0]
    a = SendBudget(one, "email:p", 8, backoff=backoff, clock=lambda: at[0])
    b = SendBudget(two, "email:p", 8, backoff=backoff, clock=lambda: at[0])

    def granted(budget: SendBudget) -> int:
        return sum(budget.take() for _ in range(20))

    assert granted(a) == 8
    assert a.slow_down() == 4.0
    assert b.slow_down() is None  # the same burst: halved once, not twice
    at[0] = 1_001.5
    assert granted(b) == 4 and granted(a) == 0
    at[0] = 1_002.0  # a new burst, within the quiet spell: halved again
    assert b.slow_down() == 2.0
    assert granted(a) == 2
    at[0] = 1_009.0  # 5 s of climbing past the quiet spell: 2 + 5 × 0.8 = 6 a second
    assert granted(b) == 6
    at[0] = 1_020.0
    assert granted(a) == 8  # back to the full rate, not above it
    for _ in range(10):  # never below the floor's share (at least one a second)
        at[0] += 1.0
        b.slow_down()
    at[0] += 0.5
    assert granted(a) == 1
    # a budget without a rate, or without a back-off, is not slowed
    assert SendBudget(one, "email:q", 0, backoff=backoff).slow_down() is None
    assert SendBudget(one, "email:p", 8, clock=lambda: at[0]).slow_down() is None
