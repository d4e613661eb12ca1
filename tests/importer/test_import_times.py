"""An import's time is stored once (migration 012, store.import_times): the rows of the
customers it creates hold '' and every reader of whole rows sees the time they held before."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from warmup import importer
from warmup.plan import load_plan
from warmup.store import customers, open_store
from warmup.store.copy import copy_store, store_checksums
from warmup.store.tables import read_table

T0 = "2026-11-30T08:00:00+00:00"
T1 = "2026-12-01T09:00:00+00:00"
T2 = "2026-12-02T10:00:00+00:00"
HEADER = ["Email", "Email Marketing Consent"]


def _import(
    tmp_path: Path,
    example_plan: Path,
    monkeypatch: pytest.MonkeyPatch,
    at: str,
    rows: list[list[str]],
    segment: str | None = None,
) -> None:
    path = tmp_path / f"{at[:10]}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    monkeypatch.setattr(importer, "now_iso", lambda: at)
    importer.import_csv(load_plan(example_plan), path, segment=segment)


def _read(store_path: Path | str, table: str, *columns: str) -> list[tuple[object, ...]]:
    """``columns`` of ``table`` as `warmup export` reads them, with the customer's email."""
    with closing(open_store(store_path, create=False)) as store:
        names, rows = read_table(store, table)
        emails = dict(store.backend.execute("SELECT id, email FROM customers").fetchall())
        key = names.index("id" if table == "customers" else "customer_id")
        return sorted(
            (emails[row[key]], *(row[names.index(column)] for column in columns)) for row in rows
        )


def test_the_import_time_is_stored_once_and_read_as_before(
    tmp_path: Path, example_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b's second row changes the consent its first row gave: a history row in the same import
    first = [["a@example.com", "SUBSCRIBED"], ["b@example.com", "SUBSCRIBED"]]
    _import(tmp_path, example_plan, monkeypatch, T1, [*first, ["b@example.com", "UNSUBSCRIBED"]])
    second = [["a@example.com", "UNSUBSCRIBED"], ["c@example.com", "SUBSCRIBED"]]
    _import(tmp_path, example_plan, monkeypatch, T2, second, segment="vip")
    store = tmp_path / "store.db"

    with closing(sqlite3.connect(store)) as conn:
        # the customers' own rows hold no time: one row per import that created customers
        assert conn.execute("SELECT created_at FROM customers").fetchall() == [("",)] * 3
        assert conn.execute("SELECT count(*) FROM import_customers").fetchone() == (2,)
    assert _read(store, "customers", "created_at", "updated_at") == [
        ("a@example.com", T1, T2),
        ("b@example.com", T1, T1),
        ("c@example.com", T2, T2),
    ]
    assert _read(store, "consents", "status", "changed_at") == [
        ("a@example.com", "unsubscribed", T2),
        ("b@example.com", "unsubscribed", T1),
        ("c@example.com", "subscribed", T2),
    ]
    assert _read(store, "consent_changes", "new_status", "changed_at") == [
        ("a@example.com", "unsubscribed", T2),
        ("b@example.com", "unsubscribed", T1),
    ]
    assert _read(store, "segment_members", "segment", "added_at") == [
        ("a@example.com", "engaged-90", T1),
        ("a@example.com", "vip", T2),
        ("b@example.com", "engaged-90", T1),
        ("c@example.com", "vip", T2),
    ]
    # a copy holds the same rows: its checksums (over the times as read) match
    copy_store(store, tmp_path / "copy.db")
    with closing(open_store(store)) as a, closing(open_store(tmp_path / "copy.db")) as b:
        assert store_checksums(a) == store_checksums(b)


def test_postgresql_reads_the_import_times_as_sqlite_does(
    tmp_path: Path, example_plan: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    _import(tmp_path, example_plan, monkeypatch, T1, [["a@example.com", "SUBSCRIBED"]])
    _import(tmp_path, example_plan, monkeypatch, T2, [["b@example.com", "SUBSCRIBED"]], "vip")
    store = tmp_path / "store.db"
    copy_store(store, postgres_url)
    for table, column in [
        ("customers", "created_at"),
        ("consents", "changed_at"),
        ("segment_members", "added_at"),
    ]:
        assert _read(postgres_url, table, column) == _read(store, table, column)
        assert {row[1] for row in _read(store, table, column)} == {T1, T2}


def test_a_store_from_before_keeps_its_times(
    tmp_path: Path, example_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.db"
    open_store(store).close()
    with closing(sqlite3.connect(store)) as conn, conn:
        # the store as it was before migration 012, with a customer written then
        conn.execute("DROP TABLE import_customers")
        conn.execute("DELETE FROM _migrations WHERE name = '012_import_times'")
        old = customers.add(conn, "old@example.com", at=T0)
        customers.add_to_segment(conn, "engaged-90", old, at=T0)
    _import(
        tmp_path,
        example_plan,
        monkeypatch,
        T1,
        [["old@example.com", "SUBSCRIBED"], ["new@example.com", "SUBSCRIBED"]],
    )
    assert _read(store, "customers", "created_at", "updated_at") == [
        ("new@example.com", T1, T1),
        ("old@example.com", T0, T1),
    ]
    assert _read(store, "segment_members", "added_at") == [
        ("new@example.com", T1),
        ("old@example.com", T0),
    ]
