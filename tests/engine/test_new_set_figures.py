"""The engine's set queries that issue 16 rewrote for speed give the same answers on both
engines: the new-provider set against the day before (list changes and Klaviyo work), and the
past audience of a run of days (a range rather than a list of days); the transaction of the
day's bulk writes leaves reference checks as they were."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing

import pytest

from warmup.engine import sql
from warmup.store import Store, open_store

NOW = "2026-12-01T00:00:00+00:00"


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    with closing(open_store(store_location)) as opened:
        yield opened


def _customers(store: Store, confirmed: list[int]) -> list[int]:
    ids = []
    for n, flag in enumerate(confirmed):
        row = store.backend.execute(
            "INSERT INTO customers (email, klaviyo_id_confirmed, created_at, updated_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (f"c{n}@example.com", flag, NOW, NOW),
        ).fetchone()
        ids.append(int(row[0]))
    return ids


def _allocate(store: Store, day: int, new: Sequence[int], klaviyo: Sequence[int] = ()) -> None:
    for provider, ids in (("new", new), ("klaviyo", klaviyo)):
        for customer_id in ids:
            store.backend.execute(
                "INSERT INTO allocations (day, customer_id, provider, tier) VALUES (?, ?, ?, 0)",
                (day, customer_id, provider),
            )


def test_new_set_figures_against_the_day_before(store: Store) -> None:
    a, b, c, d, e = _customers(store, [1, 0, 1, 1, 0])
    # yesterday: a and b new, c with Klaviyo; today's set: a, c, d, e
    _allocate(store, 1, new=[a, b], klaviyo=[c])
    _allocate(store, 2, new=[a, c, d, e])
    rows = "SELECT customer_id, 0 AS rank FROM allocations WHERE day = 2 AND provider = 'new'"
    figures = sql.new_set_figures(store.backend, rows, 1)
    # c, d and e join the list; of them c and d have a Klaviyo id Klaviyo confirmed (a's
    # confirmed id does not count: a stays in the list)
    assert figures == sql.NewSetFigures(today=4, added=3, confirmed=2, before=2)
    # the first day: everyone is added
    first = sql.new_set_figures(store.backend, rows, 0)
    assert first == sql.NewSetFigures(today=4, added=4, confirmed=3, before=0)


@pytest.mark.parametrize(
    ("days", "spelled"), [([1, 2, 3], "BETWEEN 1 AND 3"), ([3, 1], "IN (1, 3)"), ([2], "BETWEEN")]
)
def test_past_audience_of_a_run_of_days_or_a_list(
    store: Store, days: list[int], spelled: str
) -> None:
    ids = _customers(store, [0] * 5)
    # customer n (from 1) was new on day n; customer 5 only with Klaviyo on day 2
    for day, customer_id in enumerate(ids[:4], start=1):
        _allocate(store, day, new=[customer_id])
    _allocate(store, 2, new=[], klaviyo=[ids[4]])
    test, params = sql.allocated_new_on(days)
    assert spelled in test
    found = {
        int(r[0])
        for r in store.backend.execute(f"SELECT c.id FROM customers c WHERE {test}", params)
    }
    assert found == {ids[d - 1] for d in days}
    assert sql.allocated_new_on([]) == ("(1 = 0)", [])


def test_derived_writes_transaction_restores_reference_checks(store: Store) -> None:
    def checked() -> object:
        if store.backend.dialect != "sqlite":
            return None
        return store.backend.execute("PRAGMA foreign_keys").fetchone()[0]

    before = checked()
    (customer,) = _customers(store, [0])
    with store.backend.derived_writes_transaction():
        _allocate(store, 1, new=[customer])
    assert checked() == before
    with pytest.raises(RuntimeError), store.backend.derived_writes_transaction():
        _allocate(store, 2, new=[customer])
        raise RuntimeError("a failure inside the transaction")
    # rolled back, and checked again afterwards
    days = [int(r[0]) for r in store.backend.execute("SELECT day FROM allocations")]
    assert days == [1]
    assert checked() == before
    if store.backend.dialect == "sqlite":
        assert before == 1
