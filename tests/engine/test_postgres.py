"""The engine on PostgreSQL decides exactly as on SQLite: allocations, ranks, split arms,
journeys and outbox rows, so a plan copied mid-ramp (`warmup store copy`) carries on alike."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pendulum
import pytest

from tests.support.storefill import fill_store, unsubscribe_event, write_plan
from warmup.engine import process_events, run_day
from warmup.plan import LoadedPlan, load_plan
from warmup.plan.calendar import day_date
from warmup.store import open_store
from warmup.store.copy import copy_store

# variant 1 with a split in front of the allocation and an engagement tie on purpose: every
# Python-computed SQL function the engine uses (rank hash, split bucket, SMTPUTF8 test) decides
# something here
SCENARIO = """
name: both-engines
nodes:
  - {id: t, type: trigger, on: date, next: c}
  - id: c
    type: condition
    consent: {channel: email, status_in: [subscribed, never_subscribed]}
    email_valid: true
    yes: s
  - {id: s, type: split, share: 0.8, yes: seg}
  - {id: seg, type: audience, source: segment, segment: engaged-90, yes: past}
  - {id: past, type: audience, source: past_audience, yes: limit, no: later}
  - {id: later, type: wait, duration: 1m, next: limit}
  - {id: limit, type: audience, source: allocation, yes: hook}
  - id: hook
    type: webhook
    template: klaviyo/add-profiles-to-list.json.j2
    list: exclusion
    batch_size: 100
    next: at
  - {id: at, type: wait, until: send_time, next: mail}
  - {id: mail, type: email, template: day, provider: new}
"""


def _end_of(loaded: LoadedPlan, day: int) -> pendulum.DateTime:
    when = day_date(loaded.plan, day)
    return pendulum.datetime(when.year, when.month, when.day, 23, 0, tz=loaded.plan.timezone)


def day_rows(location: Path | str, day: int) -> dict[str, list[tuple[object, ...]]]:
    """What a day decided, without the wall-clock times it was decided at."""
    queries = {
        "allocations": "SELECT customer_id, provider, tier, grp FROM allocations WHERE day = ?",
        "journeys": "SELECT customer_id, path, node, due_at, outcome, rank, last_label "
        "FROM journey_rows WHERE day = ?",
        "outbox": "SELECT key, node_id, kind, provider, customer_id, payload, status, after_key, "
        "not_before FROM outbox_rows WHERE day = ?",
        "days": "SELECT day, date, status, new_limit, new_allocated, klaviyo_allocated "
        "FROM days WHERE day = ?",
    }
    with closing(open_store(location)) as store:
        found = {
            name: sorted(tuple(r) for r in store.backend.execute(sql, (day,)))
            for name, sql in queries.items()
        }
    # JSON text is spelled differently by the engines; its content is what must agree
    found["outbox"] = [
        (*r[:5], json.loads(str(r[5])), *r[6:])
        for r in found["outbox"]  # type: ignore[misc]
    ]
    return found


def _store(folder: Path, n: int) -> Path:
    """A SQLite store with ties in engagement and a few addresses that need SMTPUTF8."""
    path = folder / "store.db"
    fill_store(path, n, seed=5)
    with closing(open_store(path)) as store:
        store.backend.execute(
            "UPDATE customers SET last_engaged_at = '2026-10-01T00:00:00+00:00' WHERE id % 3 = 0"
        )
        store.backend.execute(
            "UPDATE customers SET email = 'jöhn' || id || '@example.com' WHERE id % 17 = 0"
        )
    return path


def _plan(folder: Path, days: list[object]) -> Path:
    scenario = folder / "both.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    return write_plan(folder, days=days, scenario=scenario)


def test_a_ramp_decides_alike_on_both_engines(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store = _store(tmp_path, 300)
    copy_store(sqlite_store, postgres_url)
    plan = _plan(tmp_path, [20, 40, 60, 90])
    for day in range(1, 5):
        for location in (str(sqlite_store), postgres_url):
            monkeypatch.setenv("WARMUP_STORE", location)
            loaded = load_plan(plan)
            assert run_day(loaded, day, now=_end_of(loaded, day)).status == "completed"
        on_sqlite, on_postgres = day_rows(sqlite_store, day), day_rows(postgres_url, day)
        assert on_postgres == on_sqlite, f"day {day}"
        assert [r for r in on_sqlite["allocations"] if r[1] == "new"]
        assert [r for r in on_sqlite["outbox"] if r[2] == "email"]


def test_a_dry_run_on_postgresql_previews_what_sqlite_does(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store = _store(tmp_path, 200)
    copy_store(sqlite_store, postgres_url)
    plan = _plan(tmp_path, [30, 60])
    rendered = []
    for location in (str(sqlite_store), postgres_url):
        monkeypatch.setenv("WARMUP_STORE", location)
        loaded = load_plan(plan)
        result = run_day(loaded, 1, dry_run=True)
        rendered.append(result.render())
    assert rendered[0] == rendered[1]
    assert "30" in rendered[1]
    assert day_rows(postgres_url, 1)["allocations"] == []  # a dry run writes nothing


def test_days_one_and_two_on_sqlite_then_day_three_on_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store = _store(tmp_path, 300)
    plan = _plan(tmp_path, [20, 40, 60])
    monkeypatch.setenv("WARMUP_STORE", str(sqlite_store))
    loaded = load_plan(plan)
    for day in (1, 2):
        assert run_day(loaded, day, now=_end_of(loaded, day)).status == "completed"
    copy_store(sqlite_store, postgres_url)
    assert run_day(loaded, 3, now=_end_of(loaded, 3)).status == "completed"
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    moved = load_plan(plan)
    assert run_day(moved, 3, now=_end_of(moved, 3)).status == "completed"
    assert day_rows(postgres_url, 3) == day_rows(sqlite_store, 3)
    assert day_rows(postgres_url, 3)["outbox"]


def _run(plan: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "warmup", "run", str(plan), "--day", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )


def test_two_runs_of_a_day_on_postgresql_evaluate_it_once(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_store(_store(tmp_path, 300), postgres_url)
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    plan = _plan(tmp_path, [20, 40])
    args = ("--now", "2026-12-01T23:00", "--no-dispatch")
    # Another process (this one) holds the day's lock: a run is refused and writes nothing.
    with closing(open_store(postgres_url)) as holder, holder.lock("run"):
        out, err = _run(plan, *args).communicate(timeout=120)
        assert "error: run is locked by process" in out + err
        assert day_rows(postgres_url, 1)["days"] == []
    # Two at once: the database lock lets one evaluate; the other is refused, or (when it came
    # after) finds the day completed and changes nothing.
    runs = [_run(plan, *args), _run(plan, *args)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
    assert sorted(code for code, _, _ in results) in ([0, 0], [0, 3]), results
    ran = [out for code, out, _ in results if code == 0 and "ran engine-test day 1" in out]
    assert len([o for o in ran if "done earlier and kept as it was" not in o]) == 1, results
    for code, out, err in results:
        if code == 3:
            assert "run is locked by" in out + err
    with closing(open_store(postgres_url)) as store:
        (evaluations,) = store.backend.execute("SELECT count(*) FROM runs").fetchone()
    assert evaluations == 1
    assert len(day_rows(postgres_url, 1)["outbox"]) == 40  # 20 list rows + 20 emails, once


def test_the_engagement_score_ranks_alike_on_both_engines(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan ranking by Klaviyo engagement: fractional weights, many tied scores."""
    sqlite_store = _store(tmp_path, 300)
    rng = random.Random(7)
    with closing(open_store(sqlite_store)) as store, store.backend.transaction():
        for cid in range(1, 301):
            for n in range(rng.randint(0, 6)):
                store.backend.execute(
                    "INSERT INTO klaviyo_events (id, customer_id, kind, occurred_at) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        f"e{cid}-{n}",
                        cid,
                        rng.choice(["opened", "clicked", "received"]),
                        f"2026-11-{rng.randint(1, 28):02d}T10:00:00+00:00",
                    ),
                )
    copy_store(sqlite_store, postgres_url)
    scenario = tmp_path / "both.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    plan = write_plan(
        tmp_path,
        days=[30, 60],
        scenario=scenario,
        edits={
            "schedule:\n": "engagement: {source: klaviyo, weights: {opened: 0.1, clicked: 0.7, "
            "received: 0.01}}\nschedule:\n"
        },
    )
    for location in (str(sqlite_store), postgres_url):
        monkeypatch.setenv("WARMUP_STORE", location)
        loaded = load_plan(plan)
        assert loaded.plan.engagement.source == "klaviyo"
        assert run_day(loaded, 1, now=_end_of(loaded, 1)).status == "completed"
    assert day_rows(postgres_url, 1) == day_rows(sqlite_store, 1)


EVENT_SPLIT = """
name: event-split
nodes:
  - {id: t, type: trigger, on: date, next: limit}
  - {id: limit, type: audience, source: allocation}
  - {id: ev, type: trigger, on: event, events: [unsubscribed], next: arm}
  - {id: arm, type: split, share: 0.5, yes: hook}
  - id: hook
    type: webhook
    template: klaviyo/add-profiles-to-list.json.j2
    list: unsubscribe
"""


def test_an_event_flow_takes_the_same_split_arm_on_both_engines(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serve consent flow walks one customer at a time: on PostgreSQL the split's bucket
    is computed for that customer alone, and must agree with SQLite's."""
    sqlite_store = _store(tmp_path, 60)
    copy_store(sqlite_store, postgres_url)
    scenario = tmp_path / "events.yaml"
    scenario.write_text(EVENT_SPLIT, encoding="utf-8")
    plan = write_plan(tmp_path, days=[5], scenario=scenario)
    hooked = []
    for location in (str(sqlite_store), postgres_url):
        monkeypatch.setenv("WARMUP_STORE", location)
        loaded = load_plan(plan)
        for cid in range(1, 41):
            unsubscribe_event(location, cid, f"u{cid}", None)
        with closing(open_store(location)) as store:
            assert process_events(loaded, store) == 40
            hooked.append(
                sorted(
                    int(r[0])
                    for r in store.backend.execute(
                        "SELECT customer_id FROM outbox WHERE node_id = 'hook'"
                    )
                )
            )
    assert hooked[0] == hooked[1]
    assert 5 < len(hooked[0]) < 35  # about half of the 40
