"""The import gives the same store on SQLite (staging + executemany) and PostgreSQL (COPY +
rounds for duplicate emails): the same customers, attributes, consents and their history,
segments and report, for one file with duplicates and for a re-import over it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.importer.test_import import write_csv
from warmup.app.sample import write_sample_csv
from warmup.engine import sql
from warmup.importer import ImportReport, import_csv
from warmup.plan import load_plan
from warmup.store import Store, open_store
from warmup.store.backends import Backend
from warmup.store.customers import attributes_sql


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A first export, a later one (changed cells, a resubscribe attempt, SMS consent) and
    both in one file, so that the later rows are duplicates of earlier ones."""
    rows = list(csv.reader(write_sample_csv(tmp_path / "sample.csv", 600).open()))
    header, body = [*rows[0], "SMS Marketing Consent"], rows[1:]
    column = {name: i for i, name in enumerate(header)}
    sms = ["SUBSCRIBED", "unsubscribed", "", "Never subscribed"]
    first = [[*row, sms[i % 4]] for i, row in enumerate(body[:400])]
    later = []
    for i, row in enumerate(body[200:]):
        row = [*row, "SUBSCRIBED" if i % 3 else "SUPPRESSED"]
        row[column["Email Marketing Consent"]] = "SUBSCRIBED"  # must never resubscribe
        row[column["City"]] = ""  # an empty cell removes nothing
        row[column["Organization"]] = 'Acme "Ltd" \\ Co\n'  # a cell JSON must escape
        row[column["Last Open"]] = "2026-11-02 09:00:00"
        row[column["Last Click"]] = "yesterday" if i % 2 else "2026-11-01"  # NULL; midnight
        later.append(row)
    return (
        write_csv(tmp_path / "first.csv", header, first),
        write_csv(tmp_path / "later.csv", header, later),
        write_csv(tmp_path / "both.csv", header, first + later),
    )


# What an import writes of consents and segments, by email (ids differ between stores).
CONSENTS_BY_EMAIL = (
    "SELECT c.email, s.channel, s.status, s.source FROM consents s "
    "JOIN customers c ON c.id = s.customer_id"
)
SEGMENTS_BY_EMAIL = (
    "SELECT m.segment, c.email FROM segment_members m JOIN customers c ON c.id = m.customer_id"
)


def sorted_rows(db: Backend, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in db.execute(sql))


def _contents(store: Store) -> dict[str, Any]:
    """Everything an import writes, by email, without timestamps or engine-given ids."""
    db = store.backend
    attributes = attributes_sql(db.dialect)
    customers = [
        (*row[:-1], json.loads(row[-1]))
        for row in db.execute(
            "SELECT email, phone, external_id, klaviyo_id, first_name, last_name, "
            f"last_open_at, last_click_at, last_engaged_at, {attributes} "
            "FROM customers c ORDER BY id"
        )
    ]
    return {
        "customers": customers,
        "consents": sorted_rows(db, CONSENTS_BY_EMAIL),
        "consent_changes": [
            tuple(row)
            for row in db.execute(
                "SELECT c.email, h.channel, h.old_status, h.new_status FROM consent_changes h "
                "JOIN customers c ON c.id = h.customer_id ORDER BY c.email, h.channel, h.id"
            )
        ],
        "segments": sorted_rows(db, SEGMENTS_BY_EMAIL),
    }


def _report(report: ImportReport) -> tuple[Any, ...]:
    return (
        report.rows_read,
        report.rows_loaded,
        report.customers_new,
        report.customers_updated,
        report.duplicates_merged,
        [(r.line, r.reason) for r in report.rejects],
        [(w.line, w.value) for w in report.warnings],
    )


@pytest.mark.parametrize("order", ["one file", "a re-import"])
def test_both_engines_import_the_same(
    tmp_path: Path, example_plan: Path, postgres_url: str, order: str
) -> None:
    loaded = load_plan(example_plan)
    first, later, both = _files(tmp_path)
    files = [both] if order == "one file" else [first, later]
    stores = {"sqlite": open_store(tmp_path / "store.db"), "postgresql": open_store(postgres_url)}
    reports = {
        engine: [_report(import_csv(loaded, f, store=store)) for f in files]
        for engine, store in stores.items()
    }
    assert reports["sqlite"] == reports["postgresql"]
    contents = {engine: _contents(store) for engine, store in stores.items()}
    for table in contents["sqlite"]:
        sqlite_rows, pg_rows = contents["sqlite"][table], contents["postgresql"][table]
        assert [r for r in sqlite_rows if r not in pg_rows] == []
        assert [r for r in pg_rows if r not in sqlite_rows] == []
    assert contents["sqlite"] == contents["postgresql"]

    stored = contents["postgresql"]
    assert len(stored["customers"]) > 500
    by_email = {row[0]: row for row in stored["customers"]}
    again = [by_email[email] for email in list(by_email)[250:252]]
    assert all(r[9]["Organization"] == 'Acme "Ltd" \\ Co\n' and r[9]["City"] for r in again)
    assert all(r[6] == "2026-11-02T09:00:00" for r in again)
    assert {r[7] for r in again} == {None, "2026-11-01T00:00:00"}
    # the one-way consent rule held on both channels
    assert not [
        change
        for change in stored["consent_changes"]
        if change[2] in ("unsubscribed", "suppressed") and change[3] == "subscribed"
    ]
    assert {row[1] for row in stored["consents"]} == {"email", "sms"}
    for store in stores.values():
        store.close()


def test_conditions_read_imported_attributes(
    tmp_path: Path, example_plan: Path, store_location: str
) -> None:
    store = open_store(store_location)
    header = ["Email", "Favourite Colour", "Tier"]
    loaded = load_plan(example_plan)
    rows = [["ann@example.com", "green", "gold"], ["bob@example.com", "blue", ""]]
    import_csv(loaded, write_csv(tmp_path / "a.csv", header, rows), store=store)
    import_csv(
        loaded,
        write_csv(tmp_path / "b.csv", ["Email", "Tier"], [["bob@example.com", "gold"]]),
        store=store,
    )
    db = store.backend
    attributes = {
        email: json.loads(text)
        for email, text in db.execute(
            f"SELECT email, {attributes_sql(db.dialect)} FROM customers c ORDER BY email"
        )
    }
    assert attributes == {
        "ann@example.com": {"Favourite Colour": "green", "Tier": "gold"},
        "bob@example.com": {"Favourite Colour": "blue", "Tier": "gold"},
    }
    # the engine's condition on either engine: imported cells, then the attributes object
    db.execute(
        "UPDATE customers SET attributes = ? WHERE email = ?", ('{"vip": true}', "ann@example.com")
    )
    db.execute(
        "UPDATE customers SET attributes = ? WHERE email = ?", ('{"vip": 2}', "bob@example.com")
    )
    cases: list[tuple[str, object, list[str]]] = [
        ("Tier", "gold", ["ann@example.com", "bob@example.com"]),
        ("Favourite Colour", "blue", ["bob@example.com"]),
        ("Favourite Colour", "red", []),
        ("vip", True, ["ann@example.com"]),
        ("vip", 1, ["ann@example.com"]),
        ("vip", 2, ["bob@example.com"]),
        ("vip", "2", []),
        ("Tier", 1, []),
    ]
    for key, value, expected in cases:
        where, params = sql.attribute_equals(db, key, value)
        found = db.execute(f"SELECT email FROM customers c WHERE {where} ORDER BY 1", params)
        assert [row[0] for row in found] == expected, (key, value)
    store.close()


@pytest.mark.slow
def test_killed_postgres_import_leaves_nothing(
    tmp_path: Path, example_plan: Path, postgres_url: str
) -> None:
    big = write_sample_csv(tmp_path / "big.csv", 60_000)
    env = {**os.environ, "WARMUP_STORE": postgres_url}
    command = [sys.executable, "-m", "warmup", "import", str(example_plan), str(big), "--quiet"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    store = open_store(postgres_url)
    deadline = time.monotonic() + 30
    # killed while the COPY streams (the staging table exists only in its transaction, so
    # wait for the server to report the import's COPY)
    while time.monotonic() < deadline:
        busy = store.backend.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%'"
        ).fetchone()[0]
        if busy:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import ended before the kill"
    time.sleep(0.2)  # the server notices the closed connection and rolls back
    counts = store.backend.execute(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM imports), "
        "(SELECT count(*) FROM attribute_names)"
    ).fetchone()
    assert tuple(counts) == (0, 0, 0)
    # the keys a first import drops for its load (bulk_import_postgres) are there again
    keys = store.backend.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid IN ('customers'::regclass, "
        "'consents'::regclass, 'segment_members'::regclass) AND contype IN ('f', 'u') "
        "ORDER BY 1"
    ).fetchall()
    assert [k[0] for k in keys] == [
        "consents_customer_id_fkey",
        "customers_email_key",
        "segment_members_customer_id_fkey",
    ]
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert store.backend.execute("SELECT count(*) FROM customers").fetchone()[0] > 59_000
    store.close()
