"""Scenarios beyond the shipped two: a branch after the allocation, a flow with no allocation."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum

from tests.support.storefill import fill_store, table, write_plan
from warmup.engine import run_day
from warmup.plan import load_plan

POST_ALLOCATION_BRANCH = """
name: phone-holders-get-listed
nodes:
  - {id: t, type: trigger, on: date, next: a}
  - {id: a, type: audience, source: allocation, yes: p}
  - {id: p, type: condition, has_phone: true, yes: x, no: m}
  - {id: x, type: webhook, template: klaviyo/add-profiles-to-list.json.j2, list: exclusion,
     next: m}
  - {id: m, type: email, template: day}
"""


def test_branch_after_the_allocation(tmp_path: Path, store_path: Path) -> None:
    scenario = tmp_path / "custom.yaml"
    scenario.write_text(POST_ALLOCATION_BRANCH, encoding="utf-8")
    fill_store(store_path, 200, seed=11)
    loaded = load_plan(write_plan(tmp_path, days=[60, 60], scenario=scenario))
    now = pendulum.datetime(2026, 12, 1, 23, tz="Europe/Prague")
    result = run_day(loaded, 1, now=now)
    assert result.status == "completed"
    rows = table(
        store_path,
        "SELECT o.kind, o.after_key IS NOT NULL, c.phone IS NOT NULL, "
        "count(*) FROM outbox o JOIN customers c ON c.id = o.customer_id "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    with_phone = table(
        store_path,
        "SELECT count(*) FROM allocations a JOIN customers c ON "
        "c.id = a.customer_id WHERE a.provider = 'new' AND c.phone IS NOT NULL",
    )
    phones = int(with_phone[0][0])  # type: ignore[arg-type]
    assert 0 < phones < 60
    # Phone holders: a webhook, then an email that waits for it; the rest: an email alone.
    assert rows == [
        ("email", 0, 0, 60 - phones),
        ("email", 1, 1, phones),
        ("webhook", 0, 1, phones),
    ]
    funnel = {n.id: n for n in result.funnel}
    assert funnel["p"].out == {"yes": phones, "no": 60 - phones}
    assert funnel["m"].entered == 60
    templates = {
        json.loads(str(r[0]))["template"]
        for r in table(store_path, "SELECT payload FROM outbox_rows WHERE kind = 'email'")
    }
    assert templates == {"day-01"}
