"""Waits park customers; a later run with a later clock carries on where they are parked."""

from __future__ import annotations

from pathlib import Path

from tests.support.storefill import at, fill_store, table, unsubscribe_event, write_plan
from warmup.engine import explain, run_day
from warmup.plan import LoadedPlan, load_plan
from warmup.store import open_store


def count(store: Path, sql: str) -> int:
    return int(table(store, sql)[0][0])  # type: ignore[arg-type]


def test_before_midnight_nothing_happens(plan1: LoadedPlan, plan1_store: str) -> None:
    result = run_day(plan1, 1, now=at("23:00", "2026-11-30"))
    assert result.status == "waiting"
    assert result.due_at == "2026-11-30T23:00:00+00:00"  # midnight in Prague
    assert count(plan1_store, "SELECT count(*) FROM allocations") == 0
    assert table(plan1_store, "SELECT status FROM days") == [("waiting",)]


def test_wait_then_resume_through_the_day(plan1: LoadedPlan, plan1_store: str) -> None:
    # 00:00:30: #299 (1m) holds the newcomers, so the allocation cannot run yet.
    first = run_day(plan1, 1, now=at("00:00:30"))
    assert first.status == "waiting" and first.due_at == "2026-11-30T23:01:00+00:00"
    assert count(plan1_store, "SELECT count(*) FROM allocations") == 0
    parked = {n.id: n.parked for n in first.funnel}
    assert parked["299"] > 0 and parked["limit"] == 0  # nobody past #40 yet on day 1
    # 00:05: allocation and the exclusion-list rows; emails wait for the send time.
    second = run_day(plan1, 1, now=at("00:05"))
    assert second.status == "waiting" and second.due_at == "2026-12-01T09:00:00+00:00"
    assert count(plan1_store, "SELECT count(*) FROM outbox WHERE kind = 'webhook'") == 5
    assert count(plan1_store, "SELECT count(*) FROM outbox WHERE kind = 'email'") == 0
    assert (
        count(
            plan1_store,
            "SELECT count(*) FROM journeys WHERE node = '256' AND "
            "due_at = '2026-12-01T09:00:00+00:00'",
        )
        == 5
    )
    # Someone allocated at 00:05 unsubscribes before the send: they must not be mailed.
    victim = int(
        table(
            plan1_store,
            "SELECT customer_id FROM allocations WHERE day = 1 AND "
            "provider = 'new' ORDER BY customer_id LIMIT 1",
        )[0][0]
    )  # type: ignore[arg-type]
    unsubscribe_event(plan1_store, victim, "late-unsub", 1)
    third = run_day(plan1, 1, now=at("10:05"))
    assert third.status == "completed" and third.due_at is None
    mailed = {
        int(r[0])
        for r in table(
            plan1_store,
            "SELECT customer_id FROM outbox WHERE "  # type: ignore[arg-type]
            "kind = 'email'",
        )
    }
    assert len(mailed) == 4 and victim not in mailed
    not_before = table(plan1_store, "SELECT DISTINCT not_before FROM outbox WHERE kind = 'email'")
    assert not_before == [("2026-12-01T09:00:00+00:00",)]
    email = str(table(plan1_store, "SELECT email FROM customers WHERE id = ?", (victim,))[0][0])
    assert "not mailed" in explain(plan1, 1, email).outcome
    # The #297 unsubscribe-list row was written by the event flow.
    assert count(plan1_store, "SELECT count(*) FROM outbox WHERE node_id = '297'") == 1


def test_earlier_recipients_go_first(tmp_path: Path, store_path: Path) -> None:
    """#40/#299: yesterday's recipients stay, even when newcomers are more engaged."""
    fill_store(store_path, 200, seed=5, statuses=("subscribed",))
    loaded = load_plan(write_plan(tmp_path, variant=1, days=[10, 12, 12]))
    run_day(loaded, 1, now=at("23:00"))
    day1 = {
        r[0]
        for r in table(
            store_path, "SELECT customer_id FROM allocations WHERE day = 1 AND provider = 'new'"
        )
    }
    # Make yesterday's recipients the least engaged customers of the store.
    store_rows = ",".join(str(c) for c in day1)
    store = open_store(store_path)
    store.conn.execute(
        "UPDATE customers SET last_engaged_at = '2030-01-01T00:00:00+00:00' "
        f"WHERE id NOT IN ({store_rows})"
    )
    store.conn.execute(f"UPDATE customers SET last_engaged_at = NULL WHERE id IN ({store_rows})")
    store.close()
    run_day(loaded, 2, now=at("23:00", "2026-12-02"))
    day2 = table(
        store_path, "SELECT customer_id, tier FROM allocations WHERE day = 2 AND provider = 'new'"
    )
    assert day1 <= {c for c, _ in day2}
    assert {t for c, t in day2 if c in day1} == {0}
    assert {t for c, t in day2 if c not in day1} == {1}
