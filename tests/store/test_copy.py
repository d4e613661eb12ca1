"""`warmup store copy`: every table, verified, and a plan in mid-ramp continues on the copy."""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pendulum
import pytest

from tests.support.storefill import fill_store, write_plan
from warmup.engine import run_day
from warmup.errors import Refused
from warmup.plan import LoadedPlan, load_plan
from warmup.plan.calendar import day_date
from warmup.store import open_store
from warmup.store.copy import copy_store, store_checksums


def _end_of(loaded: LoadedPlan, day: int) -> pendulum.DateTime:
    when = day_date(loaded.plan, day)
    return pendulum.datetime(when.year, when.month, when.day, 23, 0, tz=loaded.plan.timezone)


def _checksums(location: Path | str) -> dict[str, tuple[int, str]]:
    with closing(open_store(location)) as store:
        return store_checksums(store)


def _day_rows(location: Path | str, day: int) -> dict[str, list[tuple[object, ...]]]:
    """What a day decided, without the wall-clock times it was decided at."""
    queries = {
        "allocations": "SELECT customer_id, provider, tier FROM allocations WHERE day = ?",
        "journeys": "SELECT customer_id, path, node, due_at, outcome, rank, last_label "
        "FROM journey_rows WHERE day = ?",
        "outbox": "SELECT key, node_id, kind, provider, customer_id, payload, status, after_key "
        "FROM outbox WHERE day = ?",
        "days": "SELECT day, date, status, new_limit, new_allocated, klaviyo_allocated "
        "FROM days WHERE day = ?",
    }
    with closing(open_store(location)) as store:
        return {
            name: sorted(tuple(r) for r in store.backend.execute(sql, (day,)))
            for name, sql in queries.items()
        }


def test_plan_mid_ramp_continues_on_the_copy(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tmp_path / "store.db"  # tests/conftest.py points WARMUP_STORE here
    fill_store(original, 300, seed=3)
    plan = write_plan(tmp_path, variant=1)
    loaded = load_plan(plan)
    for day in (1, 2):
        assert run_day(loaded, day, now=_end_of(loaded, day)).status == "completed"
    before = _checksums(original)
    assert before["outbox"][0] > 0 and before["journeys"][0] > 0

    copied = copy_store(original, postgres_url)
    assert {c.table: (c.rows, c.checksum) for c in copied} == before
    assert _checksums(postgres_url) == before  # read back from the server, not the report

    back = tmp_path / "back.db"
    copy_store(postgres_url, back)
    assert _checksums(back) == before

    # Day 3 on the original and on the copy that went to PostgreSQL and back decides the same.
    assert run_day(loaded, 3, now=_end_of(loaded, 3)).status == "completed"
    monkeypatch.setenv("WARMUP_STORE", str(back))
    on_copy = load_plan(plan)
    assert run_day(on_copy, 3, now=_end_of(on_copy, 3)).status == "completed"
    assert _day_rows(back, 3) == _day_rows(original, 3)
    assert _day_rows(back, 3)["outbox"]

    # And on the PostgreSQL copy itself: day 3 decides as it did on SQLite.
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    on_postgres = load_plan(plan)
    assert run_day(on_postgres, 3, now=_end_of(on_postgres, 3)).status == "completed"
    assert _day_rows(postgres_url, 3) == _day_rows(original, 3)


def test_non_empty_destination_is_refused_unless_replaced(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "store.db"
    fill_store(source, 50, seed=1)
    copy_store(source, postgres_url)
    other = tmp_path / "other.db"
    fill_store(other, 20, seed=2)
    with pytest.raises(Refused, match="already holds data"):
        copy_store(other, postgres_url)
    assert _checksums(postgres_url) == _checksums(source)
    copy_store(other, postgres_url, replace=True)
    assert _checksums(postgres_url) == _checksums(other)


def test_copy_onto_itself_is_refused(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However the location is spelled: --replace would otherwise empty the source."""
    source = tmp_path / "store.db"
    fill_store(source, 10, seed=1)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Refused, match="same store"):
        copy_store(source, "./store.db", replace=True)
    assert _checksums(source)["customers"][0] == 10
    copy_store(source, postgres_url)
    other_spelling = postgres_url.replace("127.0.0.1", "localhost")
    with pytest.raises(Refused, match="same store"):
        copy_store(postgres_url, other_spelling, replace=True)
    assert _checksums(postgres_url)["customers"][0] == 10


def test_copy_detects_a_difference(tmp_path: Path) -> None:
    """The checksum is not a restatement of the count: a changed value shows."""
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    fill_store(first, 30, seed=1)
    copy_store(first, second)
    assert _checksums(first) == _checksums(second)
    with closing(open_store(second)) as store:
        store.conn.execute("UPDATE customers SET first_name = 'Changed' WHERE id = 7")
    counts = _checksums(second)
    assert counts["customers"][0] == _checksums(first)["customers"][0]
    assert counts["customers"][1] != _checksums(first)["customers"][1]


def _warmup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmup", "store", "copy", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_copy_there_and_back(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "store.db"
    fill_store(source, 40, seed=4)
    done = _warmup(str(source), postgres_url)
    assert done.returncode == 0, done.stderr
    assert "counts and checksums match" in done.stdout
    assert "customers" in done.stdout and "40 rows" in done.stdout
    again = _warmup(str(source), postgres_url)
    assert again.returncode == 3
    assert "already holds data" in again.stderr and "--replace" in again.stderr
    assert "Traceback" not in again.stderr
    back = tmp_path / "back.db"
    assert _warmup(postgres_url, str(back)).returncode == 0
    assert _checksums(back) == _checksums(source)
    closed = _warmup(str(source), "postgresql://postgres@127.0.0.1:9/none")
    assert closed.returncode == 1 and "cannot open store" in closed.stderr
    assert "PGPASSWORD" in closed.stderr and "Traceback" not in closed.stderr
    missing = _warmup(str(tmp_path / "nothing.db"), str(tmp_path / "x.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr  # a bad argument
    assert "name an existing store as the source" in missing.stderr
    assert not (tmp_path / "x.db").exists()
    assert "Traceback" not in missing.stderr
