"""Customers sort by email byte by byte on both engines, whatever the database's collation
(migration 014), and every lookup by email still uses its key; an import reads consent and date
cells as SQLite does there too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from tests.importer.test_import import write_csv
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.store import open_store

NOW = "2026-12-01T00:00:00+00:00"
# Punctuation a linguistic collation orders apart from its bytes ('-' < '.' < '_' < 'a').
EMAILS = ["ab@x.example", "a_b@x.example", "a-b@x.example", "a.b@x.example", "a+b@x.example"]


@pytest.fixture
def icu_database(postgres_server: str) -> Iterator[str]:
    """A database whose default collation is ICU's English one, as a managed server's often
    is (this machine's own default, C.UTF-8, already orders by code point)."""
    name = f"warmup_test_icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        try:
            admin.execute(
                f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu "
                "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        except psycopg.Error as exc:  # a server built without ICU
            pytest.skip(f"no ICU collation on this server: {exc}")
    params = psycopg.conninfo.conninfo_to_dict(postgres_server)
    yield f"postgresql://{params.get('user', 'postgres')}@{params['host']}:{params['port']}/{name}"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _ordered(location: str) -> list[str]:
    with closing(open_store(location)) as store:
        db = store.backend
        for email in EMAILS:
            db.execute(
                "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?)",
                (email, NOW, NOW),
            )
        return [row[0] for row in db.execute("SELECT email FROM customers ORDER BY email")]


def test_customers_sort_by_email_bytes_on_both_engines(tmp_path: Path, icu_database: str) -> None:
    bytewise = sorted(EMAILS, key=str.encode)
    assert _ordered(str(tmp_path / "store.db")) == bytewise
    assert _ordered(icu_database) == bytewise


def test_an_email_lookup_and_a_join_by_email_use_the_key(icu_database: str) -> None:
    with closing(open_store(icu_database)) as store:
        db = store.backend
        plan = "\n".join(
            row[0] for row in db.execute("EXPLAIN SELECT id FROM customers WHERE email = 'a'")
        )
        assert "customers_email_key" in plan, plan
        # a column of the database's own collation compares with it (no collation conflict)
        db.execute("CREATE TEMP TABLE incoming (email TEXT)")
        db.execute("INSERT INTO incoming VALUES ('ab@x.example')")
        db.execute(
            "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?)",
            ("ab@x.example", NOW, NOW),
        )
        joined = db.execute(
            "SELECT count(*) FROM incoming i JOIN customers c ON c.email = i.email"
        ).fetchone()
        assert joined[0] == 1


# An en-US database folds `ı` and `ſ` to I and S in upper() and reads Arabic-Indic digits as
# \d; SQLite's upper() and strftime know ASCII only.
_CELLS = [("subscrıbed", "", "2026-10-13"), ("ſubscribed", "ſuppressed", "٢٠٢٦-10-13")]


def _imported(location: str, export: Path, example_plan: Path) -> list[tuple[object, ...]]:
    with closing(open_store(location)) as store:
        import_csv(load_plan(example_plan), export, store=store)
        return [
            tuple(row)
            for row in store.backend.execute(
                "SELECT c.email, c.last_open_at, s.channel, s.status FROM customers c "
                "JOIN consents s ON s.customer_id = c.id ORDER BY c.email, s.channel"
            )
        ]


@pytest.mark.parametrize("first", [True, False], ids=["first import", "later import"])
def test_an_import_reads_non_ascii_cells_as_sqlite_does(
    tmp_path: Path, icu_database: str, example_plan: Path, first: bool
) -> None:
    header = ["Email", "Email Marketing Consent", "SMS Marketing Consent", "Last Open"]
    rows = [[f"c{i}@x.example", *cells] for i, cells in enumerate(_CELLS)]
    export = write_csv(tmp_path / "export.csv", header, rows)
    if not first:  # a store with customers takes the general path (the upserts) alone
        other = write_csv(tmp_path / "other.csv", header, [["z@x.example", "", "", ""]])
        for location in (str(tmp_path / "store.db"), icu_database):
            _imported(location, other, example_plan)
    sqlite = _imported(str(tmp_path / "store.db"), export, example_plan)
    assert [row for row in sqlite if row[0] != "z@x.example"] == [
        ("c0@x.example", "2026-10-13T00:00:00", "email", "never_subscribed"),
        ("c1@x.example", None, "email", "never_subscribed"),
    ]
    assert _imported(icu_database, export, example_plan) == sqlite
