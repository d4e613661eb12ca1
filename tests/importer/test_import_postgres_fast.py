"""PostgreSQL's first import (customers COPYed straight into the tables, bulk_import_postgres)
writes what the general path (staging + upserts) writes: the same customers, consents, their
history and segments, for ordinary and awkward cells, duplicates included; and it leaves the
schema as it found it (the foreign keys it drops for the load are back and validated)."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.importer.test_import import write_csv
from tests.importer.test_import_engines import CONSENTS_BY_EMAIL, SEGMENTS_BY_EMAIL, sorted_rows
from warmup.app.sample import write_sample_csv
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.store import Store, bulk_import_postgres, open_store
from warmup.store.bulk_import import StagingLayout, _Sql
from warmup.store.customers import attributes_sql


@pytest.fixture(params=["server default", "C"])
def two_urls(request: pytest.FixtureRequest, postgres_server: str) -> Iterator[tuple[str, str]]:
    """Two empty databases with the same character type: the server's default, and ``C``,
    whose upper() leaves non-ASCII letters alone (``ſ`` is not ``S`` there)."""
    names = [f"warmup_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    ctype = "" if request.param == "server default" else " TEMPLATE template0 LC_CTYPE 'C'"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}{ctype}")
    params = psycopg.conninfo.conninfo_to_dict(postgres_server)
    server = f"postgresql://{params.get('user', 'postgres')}@{params['host']}:{params['port']}"
    yield f"{server}/{names[0]}", f"{server}/{names[1]}"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# Cells the importer's client-side rules must read as the server's SQL does: spaces around
# values, case, dates in and out of Klaviyo's forms, suppression spellings, and non-ASCII
# text that the fast path leaves to the server's SQL.
_AWKWARD = [
    # consent, suppressions, last open, last click, SMS consent, first name
    ("subscribed", "", "2026-10-13 04:13:50", "2026-10-13", " subscribed ", "  Ann "),
    (" SUBSCRIBED ", "[]", " 2026-10-13 04:13 ", "2026-10-13T04:13:50.25", "Never subscribed", ""),
    ("UNSUBSCRIBED", "['UNSUBSCRIBE']", "2026-13-01", "2026-02-30 10:00:00", "SUPPRESSED", " "),
    ("UNSUBSCRIBED", '["UNSUBSCRIBE"]', "2026-10-13 24:00:00", "yesterday", "unsubscribed", "Bo"),
    ("Subscribed", "['HARD_BOUNCE']", "2026-10-13\n", "", "maybe", "Cy"),
    ("NEVER_SUBSCRIBED", "{}", "2026-10-13 04:13:5", "2026-10-13 04:13:50Z", "", "Dee"),
    ("ſubscribed", "", "٢٠٢٦-10-13", "2026-10-13 04:13:50", "ſuppressed", "Édith"),
    ("unsubscribed", "UNSUBSCRIBE", "2026-10-13 04:13:50", "2026-10-14 01:00:00", "", "Fay"),
    ("", "", "", "", "SUBSCRIBED", "Gus"),
]


def _awkward(tmp_path: Path) -> Path:
    """The sample export with the awkward cells over its first rows, each row twice more
    (later copies with other cells: duplicates merge), and an SMS consent column."""
    rows = list(csv.reader(write_sample_csv(tmp_path / "sample.csv", 120).open()))
    header, body = [*rows[0], "SMS Marketing Consent"], [[*row, ""] for row in rows[1:]]
    column = {name: i for i, name in enumerate(header)}
    names = (
        "Email Marketing Consent",
        "Email Suppressions",
        "Last Open",
        "Last Click",
        "SMS Marketing Consent",
        "First Name",
    )
    for i, row in enumerate(body):
        for name, cell in zip(names, _AWKWARD[i % len(_AWKWARD)], strict=True):
            row[column[name]] = cell
    again = []
    for i, row in enumerate(body[:60]):
        copy = list(row)
        for name, cell in zip(names, _AWKWARD[(i + 3) % len(_AWKWARD)], strict=True):
            copy[column[name]] = cell
        copy[column["City"]] = "" if i % 2 else "Brno"
        again.append(copy)
    return write_csv(tmp_path / "awkward.csv", header, body + again + again[:20])


def _contents(store: Store) -> dict[str, Any]:
    """Everything an import writes, by email (ids differ between the paths' stores)."""
    db = store.backend
    attributes = attributes_sql(db.dialect)
    return {
        "customers": sorted(
            tuple(row)
            for row in db.execute(
                "SELECT email, phone, external_id, klaviyo_id, first_name, last_name, "
                f"last_open_at, last_click_at, last_engaged_at, {attributes}, email_valid, "
                "attributes, klaviyo_id_confirmed FROM customers c"
            )
        ),
        "consents": sorted_rows(db, CONSENTS_BY_EMAIL),
        "consent_changes": sorted(
            tuple(row)
            for row in db.execute(
                "SELECT c.email, h.channel, h.old_status, h.new_status FROM consent_changes h "
                "JOIN customers c ON c.id = h.customer_id"
            )
        ),
        "segments": sorted_rows(db, SEGMENTS_BY_EMAIL),
    }


def _first_row_only(tmp_path: Path, source: Path) -> Path:
    """A one-row export of a customer that ``source`` does not have."""
    rows = list(csv.reader(source.open()))
    header, row = rows[0], list(rows[1])
    row[header.index("Email")] = "someone.else@example.net"
    return write_csv(tmp_path / "one.csv", header, [row])


@pytest.mark.parametrize("batch", [bulk_import_postgres._LATER_BATCH, 7])
def test_first_import_writes_what_the_upserts_write(
    tmp_path: Path,
    example_plan: Path,
    two_urls: tuple[str, str],
    batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a small batch makes the load switch between its two COPYs many times
    monkeypatch.setattr(bulk_import_postgres, "_LATER_BATCH", batch)
    loaded = load_plan(example_plan)
    export = _awkward(tmp_path)
    one = _first_row_only(tmp_path, export)
    fast, general = open_store(two_urls[0]), open_store(two_urls[1])
    # the export into an empty store (the fast path), then another customer; and the other
    # way round, so that the export meets a store with a customer (the general path)
    fast_reports = [import_csv(loaded, path, store=fast) for path in (export, one)]
    general_reports = [import_csv(loaded, path, store=general) for path in (one, export)]
    assert [(r.customers_new, r.customers_updated, r.duplicates_merged) for r in fast_reports] == [
        (120, 0, 80),
        (1, 0, 0),
    ]
    assert [
        (r.customers_new, r.customers_updated, r.duplicates_merged) for r in general_reports
    ] == [(1, 0, 0), (120, 0, 80)]
    fast_contents, general_contents = _contents(fast), _contents(general)
    for table, rows in general_contents.items():
        assert [r for r in rows if r not in fast_contents[table]] == [], table
        assert [r for r in fast_contents[table] if r not in rows] == [], table
    assert fast_contents == general_contents
    # the awkward cells did reach both paths' rules (sanity of the sample, not of the code)
    statuses = {row[2] for row in fast_contents["consents"] if row[1] == "email"}
    assert statuses == {"subscribed", "unsubscribed", "suppressed", "never_subscribed"}
    assert {row[2] for row in fast_contents["consents"] if row[1] == "sms"} >= {"subscribed"}
    fast.close()
    general.close()


def test_first_import_leaves_the_schema_and_sequence_whole(
    tmp_path: Path, example_plan: Path, postgres_url: str
) -> None:
    loaded = load_plan(example_plan)
    store = open_store(postgres_url)
    db = store.backend
    schema = (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
        "FROM pg_constraint WHERE conrelid <> 0 UNION ALL SELECT tablename, indexname, "
        "indexdef, true FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2, 3"
    )
    before = [tuple(row) for row in db.execute(schema)]
    assert ("customers", "customers_email_key", "UNIQUE (email)", True) in before
    export = write_sample_csv(tmp_path / "sample.csv", 50)
    import_csv(loaded, export, store=store)
    assert [tuple(row) for row in db.execute(schema)] == before
    assert db.execute("SELECT count(*) FROM consents").fetchone()[0] == 50
    # the identity sequence moved past the ids the load gave: the next customer gets a new one
    import_csv(loaded, _first_row_only(tmp_path, export), store=store)
    ids = [row[0] for row in db.execute("SELECT id FROM customers ORDER BY id")]
    assert len(ids) == len(set(ids)) == 51
    assert ids[-1] > max(ids[:-1])
    # the foreign keys hold again: a consent of no customer is refused
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute(
            "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
            "VALUES (999999, 'email', 'subscribed', 'now', 'test')"
        )
    store.close()


def test_bad_rows_in_a_first_import_are_reported_as_before(
    tmp_path: Path, example_plan: Path, postgres_url: str
) -> None:
    rows = list(csv.reader(write_sample_csv(tmp_path / "sample.csv", 30).open()))
    header, body = rows[0], rows[1:]
    body[3][header.index("Email")] = "not an email"
    body[5] = body[5][:4]
    body[7][header.index("Phone Number")] = "12"
    export = write_csv(tmp_path / "bad.csv", header, body)
    report = import_csv(load_plan(example_plan), export, store=open_store(postgres_url))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (30, 28, 2)
    assert [w.value for w in report.warnings] == ["12"]
    store = open_store(postgres_url)
    phone = store.backend.execute(
        "SELECT phone FROM customers WHERE email = ?", (body[7][header.index("Email")].lower(),)
    ).fetchone()[0]
    assert phone is None
    store.close()


# Date cells around the edges of the accepted forms (trim takes spaces only; `$` is the end).
_DATES = [
    "2026-10-13 04:13:50",
    "2026-10-13T04:13:50.123456",
    "2026-10-13T04:13",
    "2026-10-13 04:13:5",
    "2026-10-13 4:13:50",
    "  2026-01-01  ",
    "2026-01-01\t",
    "\t2026-01-01",
    "2026-01-01\n",
    "2026-00-10",
    "2026-02-30",
    "2026-12-31 23:59:59",
    "2026-12-31 23:59:60",
    "2026-12-31 24:00",
    "12026-01-01",
    "2026-1-01",
    "2026-10-13 04:13:50.",
    "2026-10-13 04:13:50.5Z",
    "2026-10-13 04:13:50+02:00",
    "yesterday",
    " ",
]


def test_dates_read_by_the_importer_as_the_server_reads_them(postgres_url: str) -> None:
    """PostgreSQL's staging rows carry dates this process read (bulk_import_postgres._date):
    each reads as the server's expression reads the raw cell."""
    store = open_store(postgres_url)
    expression = _Sql(StagingLayout(("last_open",)), "postgresql", "now").date("last_open")
    for cell in _DATES:
        server = store.backend.execute(
            f"SELECT {expression} FROM (SELECT ?::text AS last_open, true AS dates_raw) s",
            (cell,),
        ).fetchone()[0]
        assert bulk_import_postgres._date(cell) == server, cell
    store.close()
