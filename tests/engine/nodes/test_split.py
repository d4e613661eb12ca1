"""The ``split`` node: a fixed share down ``yes`` by a stable hash of the customer, so each one
keeps their arm (treatment or control) every day of the ramp."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from tests.engine.test_events import add_event
from tests.support.storefill import fill_store, table, write_plan
from warmup.engine import explain, process_events, run_day
from warmup.errors import PlanError
from warmup.plan import LoadedPlan, load_plan
from warmup.report.graph import to_dot, to_mermaid
from warmup.store import open_store

SPLIT = """
name: treatment-and-control
nodes:
  - {{id: t, type: trigger, on: date, next: s}}
  - {{id: s, type: split, {share}, yes: x}}
  - {{id: x, type: webhook, template: klaviyo/add-profiles-to-list.json.j2, list: exclusion}}
  - {{id: e, type: trigger, on: event, events: [unsubscribed], next: s}}
"""


def split_plan(folder: Path, share: str = "share: 0.25") -> LoadedPlan:
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "split.yaml"
    scenario.write_text(SPLIT.format(share=share), encoding="utf-8")
    return load_plan(
        write_plan(folder, days=[10, 10, 10], scenario=scenario, store=folder / "s.db")
    )


def evening(day: int) -> pendulum.DateTime:
    return pendulum.datetime(2026, 12, day, 23, tz="Europe/Prague")


def treated(store: Path, day: int) -> set[int]:
    rows = table(store, "SELECT customer_id FROM outbox WHERE day = ? AND node_id = 'x'", (day,))
    return {int(r[0]) for r in rows}  # type: ignore[call-overload]


def test_a_quarter_goes_down_yes_and_stays_there_all_ramp(tmp_path: Path) -> None:
    loaded = split_plan(tmp_path)
    fill_store(loaded.store_path, 2000, seed=3)
    first = run_day(loaded, 1, now=evening(1))
    second = run_day(loaded, 2, now=evening(2))
    assert first.status == second.status == "completed"
    day1, day2 = treated(loaded.store_path, 1), treated(loaded.store_path, 2)
    assert 400 < len(day1) < 600  # 25% of 2,000, give or take the hash
    assert day1 == day2
    funnel = {n.id: n for n in first.funnel}
    assert funnel["s"].entered == 2000
    assert funnel["s"].out == {"yes": len(day1)}
    assert funnel["s"].ended == {"no": 2000 - len(day1)}


def test_the_arm_depends_on_the_customer_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Half the store, and the same cut written as a percent: the first 1,000 keep their arms.
    monkeypatch.delenv("WARMUP_STORE")  # each plan its own store
    whole, half = split_plan(tmp_path / "whole"), split_plan(tmp_path / "half", "percent: 25")
    fill_store(whole.store_path, 2000, seed=3)
    fill_store(half.store_path, 1000, seed=3)
    run_day(whole, 1, now=evening(1))
    run_day(half, 1, now=evening(1))
    expected = {c for c in treated(whole.store_path, 1) if c <= 1000}
    assert treated(half.store_path, 1) == expected
    assert 0 < len(expected) < 1000


def test_explain_names_the_arm(tmp_path: Path) -> None:
    loaded = split_plan(tmp_path)
    fill_store(loaded.store_path, 300, seed=3)
    run_day(loaded, 1, now=evening(1))
    yes = min(treated(loaded.store_path, 1))
    no = min(set(range(1, 301)) - treated(loaded.store_path, 1))
    inside = explain(loaded, 1, f"user{yes}@example.com").lines
    outside = explain(loaded, 1, f"user{no}@example.com").lines
    assert inside[1].startswith("#s split: in the 25% arm (hash 0.")
    assert inside[1].endswith("→ yes")
    assert inside[2].startswith("#x webhook: outbox ")
    assert outside[1].startswith("#s split: outside the 25% arm")
    assert outside[1].endswith("→ no")
    assert len(outside) == 2


def test_an_event_flow_takes_the_same_arm(tmp_path: Path) -> None:
    loaded = split_plan(tmp_path)
    fill_store(loaded.store_path, 300, seed=3)
    run_day(loaded, 1, now=evening(1))
    yes = min(treated(loaded.store_path, 1))
    no = min(set(range(1, 301)) - treated(loaded.store_path, 1))
    add_event(loaded.store_path, "u1", "unsubscribed", customer_id=yes)
    add_event(loaded.store_path, "u2", "unsubscribed", customer_id=no)
    store = open_store(loaded.store_path)
    try:
        assert process_events(loaded, store) == 2
    finally:
        store.close()
    rows = table(loaded.store_path, "SELECT key FROM outbox WHERE key LIKE '%:event:%'")
    assert [r[0] for r in rows] == [f"{loaded.plan.name}:event:1:x:{yes}"]


@pytest.mark.parametrize(
    ("share", "message"),
    [
        ("share: 0.1, percent: 10", "exactly one of `share:`"),
        ("title: no share", "exactly one of `share:`"),
        ("share: 1.5", "less than 1"),
        ("percent: 0", "greater than 0"),
    ],
)
def test_a_bad_share_is_a_plan_error(tmp_path: Path, share: str, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        split_plan(tmp_path, share)
    text = caught.value.render()
    assert "split.yaml:5" in text
    assert message in text


def test_diagrams_draw_a_split_as_a_trapezium(tmp_path: Path) -> None:
    scenario = split_plan(tmp_path).scenario
    assert 'n_s[/"#s split"\\]' in to_mermaid(scenario)
    assert '"s" [label="#s split", shape=trapezium];' in to_dot(scenario)


BOTH_ARMS = """
name: both-arms
nodes:
  - {id: t, type: trigger, on: date, next: s}
  - {id: s, type: split, share: 0.25, yes: x, no: x}
  - {id: x, type: webhook, template: klaviyo/add-profiles-to-list.json.j2, list: exclusion}
"""


def test_both_arms_to_one_node_act_for_everyone(tmp_path: Path) -> None:
    # Both arms walk the same nodes on two paths: each path's customers get the node's action
    # (one path's customers once lost theirs: journeys were matched by the node list alone).
    scenario = tmp_path / "both.yaml"
    scenario.write_text(BOTH_ARMS, encoding="utf-8")
    loaded = load_plan(
        write_plan(tmp_path, days=[10, 10, 10], scenario=scenario, store=tmp_path / "s.db")
    )
    fill_store(loaded.store_path, 400, seed=3)
    result = run_day(loaded, 1, now=evening(1))
    arms = {n.id: n for n in result.funnel}["s"].out
    assert set(arms) == {"yes", "no"} and min(arms.values()) > 0
    assert len(treated(loaded.store_path, 1)) == 400
