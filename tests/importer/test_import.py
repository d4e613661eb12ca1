from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.app.sample import KLAVIYO_COLUMNS, write_sample_csv
from warmup.cli import app
from warmup.engine import sql
from warmup.errors import CsvImportError
from warmup.importer import import_csv, is_valid_email, normalize_phone
from warmup.plan import LoadedPlan, load_plan
from warmup.store import Store, open_store
from warmup.store.customers import SEPARATOR, attribute_cells, attributes_sql

runner = CliRunner()
ATTRIBUTES = attributes_sql()


def write_csv(path: Path, header: list[str], rows: list[list[str]], bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "store.db")


@pytest.mark.parametrize(
    "raw, ok",
    [
        ("ann@example.com", True),
        ("a.b+tag@sub.example.co", True),
        ("no-at.example.com", False),
        ("two@@example.com", False),
        ("spaces in@example.com", False),
        ("x@localhost", False),
        ("x@-bad.example", False),
        ("", False),
    ],
)
def test_email_validation(raw: str, ok: bool) -> None:
    assert is_valid_email(raw) is ok


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("+420 777 123 456", "+420777123456"),
        ("+1 (500) 555-0006", "+15005550006"),
        ("555-1234", None),
        ("00420777123456", None),
        ("+0123456789", None),
    ],
)
def test_phone_normalisation(raw: str, normal: str | None) -> None:
    assert normalize_phone(raw) == normal


def test_klaviyo_export_loads_with_bad_rows_reported(tmp_path: Path, example_plan: Path) -> None:
    source = write_csv(
        tmp_path / "export.csv",
        [
            "Email",
            "First Name",
            "Phone Number",
            "Email Marketing Consent",
            "Last Open",
            "Email Suppressions",
            "Favourite Colour",
        ],
        [
            [
                "  Ann@Example.COM ",
                "Ann",
                "+420 777 123 456",
                "SUBSCRIBED",
                "2026-10-01 10:00:00",
                "",
                "green",
            ],
            ["bad-email", "Bob", "", "SUBSCRIBED", "", "", ""],
            ["cy@example.com", "Cy", "555-1234", "SUBSCRIBED", "", "", ""],
            ["dee@example.com", "Dee", "", "UNSUBSCRIBED", "", "['UNSUBSCRIBE']", ""],
            ["eve@example.com", "Eve", "", "NEVER_SUBSCRIBED", "", "['HARD_BOUNCE']", ""],
            ["ann@example.com", "", "", "SUBSCRIBED", "2026-10-05 10:00:00", "", ""],
        ],
        bom=True,
    )
    report = import_csv(load_plan(example_plan), source)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (6, 5, 1)
    assert report.customers_new == 4 and report.duplicates_merged == 1
    assert [(r.line, r.reason) for r in report.rejects] == [
        (3, "invalid email: no @ (write local@domain, e.g. jana@example.com)"),
    ]
    # a phone that is not E.164 costs the phone, not the customer (lists use the email alone)
    assert [(w.line, w.value) for w in report.warnings] == [(4, "555-1234")]
    assert report.rejects_file is not None and report.rejects_file.exists()
    assert "bad-email" in report.rejects_file.read_text()
    conn = db(tmp_path)
    assert conn.execute(
        "SELECT phone FROM customers WHERE email = 'cy@example.com'"
    ).fetchone() == (None,)
    ann = conn.execute(
        f"SELECT first_name, phone, last_engaged_at, {ATTRIBUTES} FROM customers c "
        "WHERE email = 'ann@example.com'"
    ).fetchone()
    # the duplicate merged: its empty name kept Ann, its later open won
    assert ann[:3] == ("Ann", "+420777123456", "2026-10-05T10:00:00")
    assert '"Favourite Colour":"green"' in ann[3]
    statuses = dict(
        conn.execute(
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id"
        )
    )
    assert statuses == {
        "ann@example.com": "subscribed",
        "cy@example.com": "subscribed",
        "dee@example.com": "unsubscribed",
        "eve@example.com": "suppressed",
    }
    assert (
        conn.execute(
            "SELECT count(*) FROM segment_members WHERE segment = 'engaged-90'"
        ).fetchone()[0]
        == 4
    )


def test_reimport_is_an_upsert_and_never_resubscribes(tmp_path: Path, example_plan: Path) -> None:
    loaded = load_plan(example_plan)
    header = ["Email", "Email Marketing Consent"]
    import_csv(
        loaded,
        write_csv(
            tmp_path / "a.csv",
            header,
            [["a@example.com", "UNSUBSCRIBED"], ["b@example.com", "SUBSCRIBED"]],
        ),
    )
    report = import_csv(
        loaded,
        write_csv(
            tmp_path / "b.csv",
            header,
            [
                ["a@example.com", "SUBSCRIBED"],
                ["b@example.com", "UNSUBSCRIBED"],
                ["c@example.com", "SUBSCRIBED"],
            ],
        ),
        segment="vip",
    )
    assert (report.customers_new, report.customers_updated) == (1, 2)
    conn = db(tmp_path)
    statuses = dict(
        conn.execute(
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id"
        )
    )
    assert statuses == {
        "a@example.com": "unsubscribed",
        "b@example.com": "unsubscribed",
        "c@example.com": "subscribed",
    }
    history = conn.execute("SELECT old_status, new_status, source FROM consent_changes").fetchall()
    assert history == [("subscribed", "unsubscribed", "import")]
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 3
    assert sorted(conn.execute("SELECT segment, count(*) FROM segment_members GROUP BY 1")) == [
        ("engaged-90", 2),
        ("vip", 3),
    ]


def test_column_mapping_from_plan(tmp_path: Path, example_plan: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        example_plan.read_text()
        .replace("../scenarios/variant-1.yaml", "variant-1")
        .replace("templates: ../templates\n", "")
        .replace(
            "  segment: engaged-90",
            "  segment: engaged-90\n  columns:\n"
            "    email: E-mail address\n    first_name: Given name\n"
            "    consent: null",
        )
    )
    source = write_csv(
        tmp_path / "crm.csv", ["Given name", "E-mail address"], [["Zoe", "zoe@example.com"]]
    )
    report = import_csv(load_plan(plan), source)
    assert report.rows_loaded == 1
    assert db(tmp_path).execute("SELECT first_name FROM customers").fetchone() == ("Zoe",)


def test_missing_email_column_is_a_clear_error(tmp_path: Path, example_plan: Path) -> None:
    source = write_csv(tmp_path / "x.csv", ["Mail", "Name"], [["a@example.com", "A"]])
    result = runner.invoke(app, ["import", str(example_plan), str(source)])
    assert result.exit_code == 2
    assert f"{source}:1: no `Email` column (found: Mail, Name)" in result.output
    assert "import.columns.email" in result.output
    with pytest.raises(CsvImportError):
        import_csv(load_plan(example_plan), tmp_path / "absent.csv")


@pytest.mark.parametrize(
    "header, named",
    [
        (["Email", "Colour", "Email"], "Email"),
        (["EMAIL", "Colour", " email"], "email"),
        (["Email", "Colour", "Colour"], "Colour"),
    ],
)
def test_a_column_named_twice_is_refused(
    tmp_path: Path, example_plan: Path, header: list[str], named: str
) -> None:
    # The last of two same-named columns won: `Email,Email` imported the second address and
    # kept the first as a free attribute; two `Colour` columns kept one and dropped the other.
    source = write_csv(tmp_path / "x.csv", header, [["a@example.com", "red", "b@example.com"]])
    result = runner.invoke(app, ["import", str(example_plan), str(source)])
    assert result.exit_code == 2, result.output
    assert f"{source}:1: the header names the column `{named}` twice" in result.output
    assert db(tmp_path).execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_columns_whose_names_differ_in_case_are_two(tmp_path: Path, example_plan: Path) -> None:
    # a custom property `source` beside Klaviyo's `Source`; the plan's `Email` is spelt exactly
    header = ["Email", "Source", "source", "email"]
    row = ["a@example.com", "Form", "ads", "old@example.com"]
    source = write_csv(tmp_path / "x.csv", header, [row])
    result = runner.invoke(app, ["import", str(example_plan), str(source)])
    assert result.exit_code == 0, result.output
    emails = db(tmp_path).execute("SELECT email FROM customers").fetchall()
    assert emails == [("a@example.com",)]


def test_cli_import_of_sample(tmp_path: Path, example_plan: Path) -> None:
    out = tmp_path / "sample.csv"
    assert runner.invoke(app, ["sample", "500", "--out", str(out)]).exit_code == 0
    with out.open() as handle:
        assert next(csv.reader(handle)) == KLAVIYO_COLUMNS
    result = runner.invoke(app, ["import", str(example_plan), str(out)])
    assert result.exit_code == 0, result.output
    assert "rows read         500" in result.output
    assert "phones dropped" in result.output and "warning: phone is not E.164" in result.output


def test_sample_is_deterministic(tmp_path: Path) -> None:
    a = write_sample_csv(tmp_path / "a.csv", 300, seed=7).read_bytes()
    b = write_sample_csv(tmp_path / "b.csv", 300, seed=7).read_bytes()
    c = write_sample_csv(tmp_path / "c.csv", 300, seed=8).read_bytes()
    assert a == b != c


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One large export for the kill and Ctrl-C tests: writing it costs more than either
    import it feeds, so they share it (neither changes it)."""
    return write_sample_csv(tmp_path_factory.mktemp("big") / "big.csv", 150_000)


def _import_under_way(
    tmp_path: Path, example_plan: Path, big: Path
) -> tuple[subprocess.Popen[str], Path, Path, dict[str, str]]:
    """A real `warmup import` subprocess, returned once its transaction is under way."""
    store = tmp_path / "store.db"
    env = {**os.environ, "WARMUP_STORE": str(store)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "warmup", "import", str(example_plan), str(big), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not store.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)
    return proc, store, big, env


@pytest.mark.slow
def test_killed_import_leaves_nothing_half_written(
    tmp_path: Path, example_plan: Path, big_export: Path
) -> None:
    proc, store, big, env = _import_under_way(tmp_path, example_plan, big_export)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = open_store(store).conn
    customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
    imports = conn.execute("SELECT count(*) FROM imports").fetchone()[0]
    # either the whole file or nothing
    assert (customers, imports) in ((0, 0),) or (imports == 1 and customers > 100_000)
    rerun = subprocess.run(
        [sys.executable, "-m", "warmup", "import", str(example_plan), str(big), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] > 100_000


def _store_contents(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Everything an import writes, without its timestamps."""
    conn = sqlite3.connect(path)
    return {
        "customers": conn.execute(
            "SELECT id, email, phone, external_id, klaviyo_id, first_name, last_name, "
            f"{ATTRIBUTES}, last_open_at, last_click_at, last_engaged_at FROM customers c "
            "ORDER BY id"
        ).fetchall(),
        "consents": conn.execute(
            "SELECT customer_id, channel, status, source FROM consents ORDER BY 1"
        ).fetchall(),
        "consent_changes": conn.execute(
            "SELECT customer_id, old_status, new_status, source FROM consent_changes ORDER BY id"
        ).fetchall(),
        "segment_members": conn.execute(
            "SELECT segment, customer_id FROM segment_members ORDER BY 1, 2"
        ).fetchall(),
    }


def test_new_store_and_upsert_paths_give_the_same_store(tmp_path: Path, example_plan: Path) -> None:
    """One file into an empty store (every row an insert, duplicates merged within the file)
    and the same rows as two files in turn (the second merging into existing customers)."""
    loaded = load_plan(example_plan)
    rows = list(csv.reader(write_sample_csv(tmp_path / "sample.csv", 3000).open()))
    header, body = rows[0], rows[1:]
    column = {name: i for i, name in enumerate(header)}
    later = []
    for row in body[1000:]:
        row = list(row)
        row[column["Email Marketing Consent"]] = "SUBSCRIBED"  # must never resubscribe
        row[column["City"]] = ""  # an empty cell removes nothing
        row[column["Organization"]] = 'Acme "Ltd" \\ Co'  # a new attribute, escaped
        row[column["Last Open"]] = "2026-11-02 09:00:00"
        later.append(row)
    first = write_csv(tmp_path / "first.csv", header, body[:2000])
    second = write_csv(tmp_path / "second.csv", header, later)
    both = write_csv(tmp_path / "both.csv", header, body[:2000] + later)

    one_store = open_store(tmp_path / "one.db")
    one = import_csv(loaded, both, store=one_store)
    two_store = open_store(tmp_path / "two.db")
    import_csv(loaded, first, store=two_store)
    two = import_csv(loaded, second, store=two_store)

    assert _store_contents(tmp_path / "one.db") == _store_contents(tmp_path / "two.db")
    assert one.customers_updated == 0 and one.duplicates_merged > 1000
    assert two.customers_updated > 900 and two.customers_new > 900
    # the rules held on the way, e.g. for customers in both files
    conn = sqlite3.connect(tmp_path / "one.db")
    assert conn.execute(
        "SELECT count(*) FROM consent_changes WHERE old_status IN ('unsubscribed', 'suppressed')"
        " AND new_status = 'subscribed'"
    ).fetchone() == (0,)
    for row in body[1000:2000:97]:
        email = row[column["Email"]].strip().lower()
        stored = conn.execute(
            f"SELECT {ATTRIBUTES}, last_open_at FROM customers c WHERE email = ?", (email,)
        ).fetchone()
        if stored is None:  # a rejected row
            continue
        attributes = json.loads(stored[0])
        assert attributes["City"] == row[column["City"]]
        assert attributes["Organization"] == 'Acme "Ltd" \\ Co'
        assert stored[1] == "2026-11-02T09:00:00"
    # both stores' foreign keys hold, and the connections check them again after the import
    for store in (one_store, two_store):
        assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_attributes_are_the_non_empty_free_cells_as_json(
    tmp_path: Path, example_plan: Path
) -> None:
    loaded = load_plan(example_plan)
    header = ["Email", "Favourite Colour", 'Note "quoted"', "Město"]
    import_csv(
        loaded,
        write_csv(
            tmp_path / "a.csv",
            header,
            [["ann@example.com", "green", 'line one\nline "two" \\ end\t', "Praha"]],
        ),
    )
    import_csv(loaded, write_csv(tmp_path / "b.csv", header, [["ann@example.com", "", "", "Brno"]]))
    stored = db(tmp_path).execute(f"SELECT {ATTRIBUTES} FROM customers c").fetchone()[0]
    assert json.loads(stored) == {
        "Favourite Colour": "green",
        'Note "quoted"': 'line one\nline "two" \\ end\t',
        "Město": "Brno",
    }
    # stored once per store, not per customer; conditions read the value by its position
    names = db(tmp_path).execute("SELECT name FROM attribute_names ORDER BY position")
    assert names.fetchall() == [
        ("Favourite Colour",),
        ('Note "quoted"',),
        ("Město",),
    ]
    with closing(open_store(tmp_path / "store.db")) as store:
        where, params = sql.attribute_equals(store.backend, "Favourite Colour", "green")
    assert db(tmp_path).execute(
        f"SELECT email FROM customers c WHERE {where}", params
    ).fetchall() == [("ann@example.com",)]
    import_csv(loaded, write_csv(tmp_path / "c.csv", header, [["bob@example.com", "", "", ""]]))
    assert db(tmp_path).execute(
        f"SELECT {ATTRIBUTES} FROM customers c WHERE email = 'bob@example.com'"
    ).fetchone() == ("{}",)


def test_an_unreadable_row_rolls_back_everything(tmp_path: Path, example_plan: Path) -> None:
    loaded = load_plan(example_plan)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        b"Email,First Name\n"
        + b"".join(b"c%d@example.com,C\n" % i for i in range(30_000))
        + b"bob@example.com,B\xffb\n"
    )
    store = open_store(tmp_path / "store.db")
    with pytest.raises(CsvImportError) as caught:
        import_csv(loaded, bad, store=store)
    assert "is not UTF-8" in str(caught.value) and caught.value.line == 30_002
    conn = store.conn
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM imports").fetchone() == (0,)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    # the same connection imports again: nothing of the failed import is left behind
    good = write_csv(tmp_path / "good.csv", ["Email"], [["cy@example.com"]])
    assert import_csv(loaded, good, store=store).customers_new == 1


@pytest.mark.slow
def test_ctrl_c_during_import_exits_130_and_writes_nothing(
    tmp_path: Path, example_plan: Path, big_export: Path
) -> None:
    proc, store, _, _ = _import_under_way(tmp_path, example_plan, big_export)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the import finished before the interrupt landed")
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
    conn = open_store(store).conn
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0


@pytest.mark.parametrize(
    "cell, joined",
    [
        ("Praha 1", True),
        ("Město ü € 😀", True),  # non-ASCII: no byte of it is special
        ("", True),
        ('say "hi"', False),
        ("back\\slash", False),
        ("tab\there", False),
        ("nul\x00", False),
        ("unit\x1fseparator", False),  # the joined form's own separator inside a cell
    ],
)
def test_free_cells_are_joined_unless_a_cell_holds_a_special_character(
    tmp_path: Path, example_plan: Path, cell: str, joined: bool
) -> None:
    """The free cells are kept joined by the separator only when no cell holds a character
    that form cannot carry; either form gives the cells back as they were."""
    loaded = load_plan(example_plan)
    header = ["Email", "City", "Note", "Zip"]
    import_csv(
        loaded,
        write_csv(tmp_path / "a.csv", header, [["ann@example.com", "Brno", cell, "60200"]]),
    )
    (values,) = db(tmp_path).execute("SELECT attribute_values FROM customers").fetchone()
    assert values.startswith(SEPARATOR) is joined
    assert attribute_cells(values) == ["Brno", cell, "60200"]


def _journal_during_import(store: Store, loaded: LoadedPlan, csv_path: Path) -> str:
    """The store's journal mode while the import's transaction is under way (read by the
    progress callback, which the last row calls)."""
    modes: list[str] = []

    def progress(_: int) -> None:
        modes.append(store.conn.execute("PRAGMA journal_mode").fetchone()[0])

    import_csv(loaded, csv_path, store=store, progress=progress)
    return modes[-1]


def test_a_first_import_loads_through_a_rollback_journal_then_the_store_is_wal_again(
    tmp_path: Path, example_plan: Path
) -> None:
    """A store's first import writes its pages once, through a rollback journal (a killed one
    is rolled back from it: test_killed_import_leaves_nothing_half_written kills a first
    import); a re-import keeps the write-ahead log, and so does a first import while another
    connection has the store open."""
    loaded = load_plan(example_plan)
    header = ["Email", "City"]
    first = write_csv(tmp_path / "a.csv", header, [["ann@example.com", "Brno"]])
    again = write_csv(tmp_path / "b.csv", header, [["bob@example.com", "Praha"]])
    with closing(open_store(tmp_path / "store.db")) as store:
        assert _journal_during_import(store, loaded, first) == "delete"
        assert store.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL again
        assert _journal_during_import(store, loaded, again) == "wal"
    assert not (tmp_path / "store.db-journal").exists()
    assert db(tmp_path).execute("PRAGMA journal_mode").fetchone() == ("wal",)

    other = tmp_path / "other"
    other.mkdir()
    with closing(open_store(other / "store.db")) as store:
        reader = sqlite3.connect(other / "store.db")
        assert reader.execute("SELECT count(*) FROM customers").fetchone() == (0,)
        assert _journal_during_import(store, loaded, first) == "wal"
        assert reader.execute("SELECT email FROM customers").fetchall() == [("ann@example.com",)]
        reader.close()
