"""`warmup events import` and `warmup serve --help` through the CLI: exact output, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.consent import add_customers, add_mail, counts, write_plan
from warmup.cli import app
from warmup.plan import LoadedPlan
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture
def plan(tmp_path: Path) -> LoadedPlan:
    loaded = write_plan(tmp_path)
    store = open_store(loaded.store_path)
    ids = add_customers(store, ["ann@example.com", "bob@example.com"])
    add_mail(store, 2, ids.values())
    store.close()
    return loaded


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def plan_on_either(
    tmp_path: Path,
    store_location: str,
    monkeypatch: pytest.MonkeyPatch,
) -> LoadedPlan:
    """:func:`plan` with its store on SQLite or PostgreSQL (``WARMUP_STORE``)."""
    monkeypatch.setenv("WARMUP_STORE", store_location)
    return plan.__wrapped__(tmp_path)  # type: ignore[attr-defined,no-any-return]


def test_events_import_stores_each_event_once(plan_on_either: LoadedPlan, tmp_path: Path) -> None:
    plan = plan_on_either
    csv_file = write(
        tmp_path / "events.csv",
        "Event_ID,type,email,occurred_at,reason\n"
        "b1,hard_bounced,ann@example.com,2026-12-02T10:00:00Z,550 no such user\n"
        "d1,delivered,bob@example.com,2026-12-02T10:00:01,\n"
        "x1,soft_bounced,carol@example.com,2026-12-02T10:00:02+01:00,\n",
    )
    first = runner.invoke(app, ["events", "import", str(plan.path), str(csv_file)])
    assert first.exit_code == 0, first.output
    assert first.output == (
        "events.csv: 3 events read, 3 stored, 0 already stored, 1 for emails not in the store\n"
    )
    again = runner.invoke(app, ["events", "import", str(plan.path), str(csv_file)])
    assert again.output == ("events.csv: 3 events read, 0 stored, 3 already stored\n")
    store = open_store(plan.store_path)
    rows = [
        tuple(row)
        for row in store.backend.execute(
            "SELECT event_id, type, day, occurred_at, payload FROM events ORDER BY event_id"
        )
    ]
    store.close()
    assert rows == [
        ("b1", "hard_bounced", 2, "2026-12-02T10:00:00+00:00", '{"reason": "550 no such user"}'),
        ("d1", "delivered", 2, "2026-12-02T10:00:01+00:00", '{"reason": ""}'),
        ("x1", "soft_bounced", None, "2026-12-02T09:00:02+00:00", '{"reason": ""}'),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "event_id,type,email,occurred_at\ne1,delivered,ann@example.com,2026-12-02T10:00:00Z\n"
            "e2,opened,ann@example.com,2026-12-02T10:00:00Z\n",
            "events.csv:3: type 'opened' is not one of delivered, hard_bounced, soft_bounced, "
            "complained, unsubscribed",
        ),
        (
            "event_id,type,email\ne1,delivered,ann@example.com\n",
            "events.csv:1: missing column occurred_at",
        ),
        (
            "event_id,type,email,occurred_at\ne1,delivered,ann@example.com,soon\n",
            "events.csv:2: occurred_at 'soon' is not an ISO 8601 time",
        ),
        (
            "event_id,type,email,occurred_at\n,delivered,ann@example.com,2026-12-02T10:00:00Z\n",
            "events.csv:2: event_id is empty",
        ),
    ],
)
def test_a_bad_row_rejects_the_file(
    plan: LoadedPlan, tmp_path: Path, text: str, message: str
) -> None:
    store = open_store(plan.store_path)
    before = counts(store)
    result = runner.invoke(
        app, ["events", "import", str(plan.path), str(write(tmp_path / "events.csv", text))]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert counts(store) == before
    store.close()


def test_unsubscribes_go_through_the_consent_flow(plan: LoadedPlan, tmp_path: Path) -> None:
    csv_file = write(
        tmp_path / "events.csv",
        "event_id,type,email,occurred_at\nu1,unsubscribed,ann@example.com,2026-12-02T11:00:00Z\n",
    )
    # No Klaviyo key here: the store changes, Klaviyo waits, and the output says what to do.
    result = runner.invoke(app, ["events", "import", str(plan.path), str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "1 unsubscribes/complaints went through the consent flow" in result.output
    assert "Klaviyo not updated yet: environment variable KLAVIYO_TEST_KEY is not set" in (
        result.output
    )
    store = open_store(plan.store_path)
    status = store.conn.execute(
        "SELECT s.status FROM consents s JOIN customers c ON c.id = s.customer_id "
        "WHERE c.email = 'ann@example.com'"
    ).fetchone()[0]
    waiting = store.conn.execute(
        "SELECT count(*) FROM outbox WHERE json_extract(payload, '$.list') = 'unsubscribe' "
        "AND status = 'pending'"
    ).fetchone()[0]
    store.close()
    assert (status, waiting) == ("unsubscribed", 1)


def test_commands_have_help() -> None:
    for command in (["serve", "--help"], ["events", "import", "--help"]):
        result = runner.invoke(app, command, terminal_width=100)
        assert result.exit_code == 0
        assert "Usage: warmup " in result.output and "plan" in result.output.lower()


def test_a_latin1_events_file_is_located(plan: LoadedPlan, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"event_id,type,email,occurred_at\ne1,delivered,caf\xe9@example.com,2026-12-01T10:00:00Z\n"
    )
    result = runner.invoke(app, ["events", "import", str(plan.path), str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2:17: byte 0xE9" in result.output and "save it as UTF-8" in result.output
