"""Guardrail figures and decisions on outbox and event rows written directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.consent import add_customers, add_events, add_mail, write_plan
from warmup.errors import GuardrailRefusal
from warmup.guardrails import check_guardrails, day_figures, evaluate_guardrails
from warmup.plan import LoadedPlan, load_plan
from warmup.store import Store, open_store


@pytest.fixture
def plan(tmp_path: Path) -> LoadedPlan:
    return write_plan(tmp_path)


@pytest.fixture
def store(plan: LoadedPlan) -> Iterator[Store]:
    opened = open_store(plan.store_path)
    yield opened
    opened.close()


def people(store: Store, n: int, prefix: str) -> list[int]:
    return list(add_customers(store, [f"{prefix}{i}@example.com" for i in range(n)]).values())


def ran(store: Store, day: int, volume_day: int | None = None) -> None:
    store.db["days"].insert(
        {"day": day, "date": "2026-12-01", "status": "completed", "volume_day": volume_day}
    )


def sent_day(
    store: Store,
    day: int,
    n: int,
    *,
    bounced: int = 0,
    hard_events: int = 0,
    soft: int = 0,
    complaints: int = 0,
    unsubscribes: int = 0,
    volume_day: int | None = None,
) -> list[int]:
    ids = people(store, n, f"d{day}-")
    add_mail(store, day, ids[:bounced], status="bounced")
    add_mail(store, day, ids[bounced:])
    add_events(store, day, "hard_bounced", ids[bounced : bounced + hard_events])
    add_events(store, day, "soft_bounced", ids[n - soft :] if soft else [])
    add_events(store, day, "complained", ids[bounced : bounced + complaints])
    add_events(store, day, "unsubscribed", ids[bounced : bounced + unsubscribes])
    ran(store, day, volume_day)
    return ids


def test_figures_count_each_customer_once(store: Store) -> None:
    ids = sent_day(store, 1, 400, bounced=4, hard_events=2, soft=6, complaints=1, unsubscribes=3)
    # An SMTP refusal also arrives as a hard_bounced event: one bounce, not two.
    add_events(store, 1, "hard_bounced", ids[:1])
    add_mail(store, 2, people(store, 5, "later"))
    [f] = day_figures(store, before=2)
    assert (f.day, f.sent, f.hard_bounced, f.soft_bounced) == (1, 400, 6, 6)
    assert f.delivered == 388
    assert f.hard_bounce_rate == pytest.approx(6 / 400)
    assert f.complaint_rate == pytest.approx(1 / 388)
    assert f.unsubscribe_rate == pytest.approx(3 / 388)
    assert [g.day for g in day_figures(store)] == [1, 2]


def test_below_min_sample_rates_do_not_count(plan: LoadedPlan, store: Store) -> None:
    sent_day(store, 1, 50, bounced=10)  # 20% bounces, but only 50 of min_sample 200
    decision = evaluate_guardrails(plan, store, 2)
    assert decision.action == "proceed" and decision.volume_day == 2
    assert "below min_sample 200" in decision.reasons[0]


def test_small_days_pool_until_the_sample_is_reached(plan: LoadedPlan, store: Store) -> None:
    sent_day(store, 1, 150, bounced=3)
    sent_day(store, 2, 100, bounced=3)  # 6 of 250 pooled = 2.4% ≥ the 2% hold line
    decision = evaluate_guardrails(plan, store, 3)
    assert decision.action == "hold"
    assert decision.window == [1, 2]
    assert "days 1–2: hard bounce rate 2.40% (6 of 250 sent) reached the hold line 2%" in (
        decision.reasons
    )


def test_healthy_days_proceed(plan: LoadedPlan, store: Store) -> None:
    sent_day(store, 1, 300, bounced=1, complaints=0)
    sent_day(store, 2, 300, hard_events=5)
    decision = evaluate_guardrails(plan, store, 3)
    assert decision.action == "proceed" and decision.volume_day == 3
    assert decision.window == [2]
    assert [f.day for f in decision.figures] == [1, 2]


def test_hold_repeats_the_last_healthy_days_volume(plan: LoadedPlan, store: Store) -> None:
    sent_day(store, 1, 300)
    sent_day(store, 2, 300)
    sent_day(store, 3, 300, bounced=9)  # 3%: hold
    decision = evaluate_guardrails(plan, store, 4)
    assert decision.action == "hold" and decision.volume_day == 2


@pytest.mark.parametrize(
    "n, kwargs, words",
    [
        (
            600,
            {"complaints": 1},
            "complaint rate 0.17% (1 of 600 delivered) reached the hold line 0.10%",
        ),
        (300, {"soft": 30}, "delivered rate 90% (270 of 300 sent) fell to the hold line 90%"),
    ],
)
def test_hold_on_complaints_and_delivery(
    plan: LoadedPlan, store: Store, n: int, kwargs: dict[str, int], words: str
) -> None:
    sent_day(store, 1, 300)
    sent_day(store, 2, n, **kwargs)
    decision = evaluate_guardrails(plan, store, 3)
    assert decision.action == "hold"
    assert f"day 2: {words}" in decision.reasons


def test_after_a_hold_the_ramp_moves_one_step_on(plan: LoadedPlan, store: Store) -> None:
    sent_day(store, 1, 300)
    sent_day(store, 2, 300)
    sent_day(store, 3, 300, bounced=9)
    sent_day(store, 4, 300, volume_day=2)  # ran held at day 2's volume, cleanly
    decision = evaluate_guardrails(plan, store, 5)
    assert decision.action == "proceed" and decision.volume_day == 3


def test_rollback_refuses_until_overridden(plan: LoadedPlan, store: Store) -> None:
    for day in range(1, 5):
        sent_day(store, day, 300)
    sent_day(store, 5, 300, bounced=15, complaints=1)  # 5% bounces: stop
    with pytest.raises(GuardrailRefusal) as refused:
        check_guardrails(plan, store, 6)
    text = refused.value.render()
    assert refused.value.exit_code == 3
    assert "roll back to day 3's volume" in text
    assert "hard bounce rate 5% (15 of 300 sent) reached the rollback line 5%" in text
    assert "--override-guardrail" in text
    decision = check_guardrails(plan, store, 6, override_reason="removed the bought list")
    assert decision.action == "rollback" and decision.volume_day == 3


def test_plan_thresholds_override_the_defaults(tmp_path: Path) -> None:
    loaded = write_plan(tmp_path, extra="")
    text = loaded.path.read_text().replace(
        "hold: {hard_bounce_rate: 0.02", "hold: {hard_bounce_rate: 0.005"
    )
    loaded.path.write_text(text)
    strict = load_plan(loaded.path)
    store = open_store(strict.store_path)
    try:
        sent_day(store, 1, 300, bounced=3)  # 1%: fine by default, a hold at 0.5%
        assert evaluate_guardrails(strict, store, 2).action == "hold"
    finally:
        store.close()
