"""Per-group caps and holds inside `warmup run` (allocation and outbox, no dispatch): a capped
group's overflow stays on Klaviyo (no exclusion, no email) while other groups take the slots;
a group whose bounce rate crosses the hold line is held at its last count while the others
grow; the dry run and the run show each group."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.mailboxes.mailbox_helpers import group_of_test_address, mailbox_plan
from tests.support.consent import add_customers
from warmup.cli import app
from warmup.consent import sendgrid_events
from warmup.events import record_events
from warmup.plan import LoadedPlan
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "mailbox-test-secret")


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store's engine: SQLite, or for the tests marked BOTH PostgreSQL too (the plan's
    store is then the test's PostgreSQL database)."""
    name = str(getattr(request, "param", "sqlite"))
    if name == "postgresql":
        monkeypatch.setenv("WARMUP_STORE", str(request.getfixturevalue("postgres_url")))
    return name


BOTH = pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)


def _customers(loaded: LoadedPlan) -> None:
    store = open_store(loaded.store_path)
    emails = [f"g{i:03d}@gmail.com" for i in range(80)]
    emails += [f"m{i:03d}@outlook.com" for i in range(60)]
    emails += [f"o{i:03d}@example.com" for i in range(60)]
    add_customers(store, emails)
    store.close()


def run(loaded: LoadedPlan, day: int, *extra: str) -> str:
    result = runner.invoke(
        app,
        [
            "run",
            str(loaded.path),
            "--day",
            str(day),
            "--no-dispatch",
            "--now",
            f"2026-12-0{day}T12:00",
            *extra,
        ],
        terminal_width=120,
    )
    assert result.exit_code == 0, result.output
    return result.output


def outbox_groups(loaded: LoadedPlan, day: int, kind: str) -> Counter[str]:
    store = open_store(loaded.store_path)
    try:
        emails = [
            e
            for (e,) in store.backend.execute(
                "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.day = ? AND o.kind = ?",
                (day, kind),
            )
        ]
    finally:
        store.close()
    return Counter(group_of_test_address(e) for e in emails)


def mailbox_days(loaded: LoadedPlan, day: int) -> dict[str, tuple[int, int | None, int, bool]]:
    store = open_store(loaded.store_path)
    try:
        return {
            grp: (eligible, cap, new, held is not None)
            for grp, eligible, cap, new, held in store.backend.execute(
                "SELECT grp, eligible, cap, new, held FROM mailbox_days WHERE day = ?", (day,)
            )
        }
    finally:
        store.close()


@BOTH
def test_capped_groups_overflow_stays_on_klaviyo(tmp_path: Path) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100})
    _customers(loaded)
    preview = run(loaded, 1, "--dry-run")
    assert "mailbox groups:" in preview
    assert "gmail      new        20 of        80 eligible, cap 20" in preview
    assert "microsoft  new        10 of        60 eligible, cap 10" in preview
    # example.com is a company domain and lookups are off: said, and counted as other
    assert "60 customers of 1 company domains count as `other`" in preview
    assert "mailbox_groups.resolve_mx" not in preview

    out = run(loaded, 1)
    assert "allocation: new provider 50 of limit 50" in out
    # the exclusion list's webhook (#225) and the email: the capped groups' top ranks only
    for kind in ("webhook", "email"):
        assert outbox_groups(loaded, 1, kind) == {"gmail": 20, "microsoft": 10, "other": 20}
    assert mailbox_days(loaded, 1) == {
        "gmail": (80, 20, 20, False),
        "microsoft": (60, 10, 10, False),
        "yahoo": (0, None, 0, False),
        "apple": (0, None, 0, False),
        "other": (60, None, 20, False),
    }
    store = open_store(loaded.store_path)
    try:
        # the overflow is allocated to Klaviyo, not dropped; the day's counts add up
        allocated = dict(
            store.backend.execute(
                "SELECT provider, count(*) FROM allocations WHERE day = 1 GROUP BY provider"
            )
        )
        day = store.backend.execute(
            "SELECT new_limit, new_allocated, klaviyo_allocated FROM days WHERE day = 1"
        ).fetchone()
    finally:
        store.close()
    assert allocated == {"new": 50, "klaviyo": 150}
    assert tuple(day) == (50, 50, 150)

    # day 2: limit 100; microsoft's ramp gives it 20, gmail 40% = 40, other fills the rest
    run(loaded, 2)
    assert outbox_groups(loaded, 2, "email") == {"gmail": 40, "microsoft": 20, "other": 40}


@BOTH
def test_a_group_held_by_its_bounce_rate_while_the_others_grow(tmp_path: Path) -> None:
    # hold line 15%: the day's pooled 10% stays under it, gmail's own 25% does not
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100}, guardrails=(10, 0.15))
    _customers(loaded)
    run(loaded, 1)
    store = open_store(loaded.store_path)
    with store.backend.transaction():
        store.backend.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = 1")
        store.backend.execute(
            "UPDATE outbox SET status = 'bounced' WHERE id IN (SELECT o.id FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'email' AND o.day = 1 "
            "AND c.email LIKE '%@gmail.com' ORDER BY o.id LIMIT 5)"
        )
    store.close()
    preview = run(loaded, 2, "--dry-run")
    # the day as a whole goes on
    assert "guardrails hold" not in preview and "guardrails stop" not in preview
    assert "mailbox group gmail held at 20: day 1: hard bounce rate 25% (5 of 20 sent)" in preview
    out = run(loaded, 2)
    assert "allocation: new provider 100 of limit 100" in out
    assert "(held)" in out
    days = mailbox_days(loaded, 2)
    assert days["gmail"][1:] == (20, 20, True)
    assert days["microsoft"][1:] == (20, 20, False)
    assert outbox_groups(loaded, 2, "email") == {"gmail": 20, "microsoft": 20, "other": 60}


def test_a_group_held_by_its_sendgrid_deferrals(tmp_path: Path) -> None:
    # delivered-rate hold line 70%: 7 of gmail's 20 deferred by SendGrid leave it 65%
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100}, guardrails=(10, 0.15))
    _customers(loaded)
    run(loaded, 1)
    store = open_store(loaded.store_path)
    with store.backend.transaction():
        store.backend.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = 1")
        deferred = [
            e
            for (e,) in store.backend.execute(
                "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.kind = 'email' AND o.day = 1 AND c.email LIKE '%@gmail.com' "
                "ORDER BY o.id LIMIT 7"
            )
        ]
    body = json.dumps(
        [
            {"email": e, "event": "deferred", "timestamp": 1796126400 + i, "sg_event_id": f"d{i}"}
            for i, e in enumerate(deferred * 2)  # a second attempt's deferral: counted once
        ]
    ).encode()
    record_events(store, sendgrid_events.parse(body), source="sendgrid")
    store.close()
    preview = run(loaded, 2, "--dry-run")
    assert "guardrails hold" not in preview
    assert "mailbox group gmail held at 20: day 1: delivered rate 65%" in preview
    out = run(loaded, 2)
    assert mailbox_days(loaded, 2)["gmail"][1:] == (20, 20, True), out


def test_status_and_report_show_each_group(tmp_path: Path) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100})
    _customers(loaded)
    run(loaded, 1)
    status = runner.invoke(app, ["status", str(loaded.path), "--now", "2026-12-01T18:00"])
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    head = lines.index("mailbox groups")
    table = [line.split() for line in lines[head + 1 : head + 5]]
    assert table[0] == ["day", "group", "eligible", "cap", "new", "sent", "bounce", "complaint"]
    # nothing dispatched yet (--no-dispatch): sent 0, no rates
    assert table[1:] == [
        ["1", "gmail", "80", "20", "20", "0", "-", "-"],
        ["1", "microsoft", "60", "10", "10", "0", "-", "-"],
        ["1", "other", "60", "-", "20", "0", "-", "-"],
    ]
    as_json = runner.invoke(app, ["status", str(loaded.path), "--json"])
    groups = json.loads(as_json.output)["mailbox_groups"]
    assert [(g["group"], g["new"], g["cap"]) for g in groups] == [
        ("gmail", 20, 20),
        ("microsoft", 10, 10),
        ("other", 20, None),
    ]
    html = tmp_path / "report.html"
    report = runner.invoke(app, ["report", str(loaded.path), "--html", str(html)])
    assert report.exit_code == 0, report.output
    text = html.read_text()
    assert "<h2>Mailbox groups</h2>" in text
    assert "<td>microsoft</td><td>60</td><td>10</td><td>10</td>" in text


def test_a_day_that_takes_everyone_still_leaves_a_capped_groups_overflow(tmp_path: Path) -> None:
    # limit 500 over 200 eligible: everyone fits, except microsoft's customers past its 10
    loaded = mailbox_plan(tmp_path, volumes={1: 500})
    _customers(loaded)
    out = run(loaded, 1)
    assert "allocation: new provider 150 of limit 200" in out
    assert outbox_groups(loaded, 1, "email") == {"gmail": 80, "microsoft": 10, "other": 60}
    assert mailbox_days(loaded, 1)["microsoft"] == (60, 10, 10, False)


def _explained(loaded: LoadedPlan, email: str) -> str:
    result = runner.invoke(app, ["explain", str(loaded.path), email, "--day", "1"])
    assert result.exit_code == 0, result.output
    return result.output


@BOTH
def test_explain_names_the_group_and_its_cap(tmp_path: Path) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50})
    _customers(loaded)
    run(loaded, 1)
    store = open_store(loaded.store_path)
    try:
        rows = store.backend.execute(
            "SELECT c.email, a.provider, j.rank FROM allocations a "
            "JOIN customers c ON c.id = a.customer_id "
            "JOIN journey_rows j ON j.day = a.day AND j.customer_id = a.customer_id "
            "WHERE a.day = 1 ORDER BY j.rank"
        ).fetchall()
    finally:
        store.close()
    # a microsoft customer within the day's limit, left out only by microsoft's cap of 10
    capped_out = next(
        e for e, p, r in rows if e.endswith("@outlook.com") and p == "klaviyo" and r <= 50
    )
    text = _explained(loaded, capped_out)
    assert "microsoft at its cap of 10 → stays with Klaviyo" in text
    assert "> limit" not in text
    # a customer of an uncapped group taken past rank 50: the capped groups' slots went to it
    other_in = next(e for e, p, r in rows if e.endswith("@example.com") and p == "new" and r > 50)
    text = _explained(loaded, other_in)
    assert "other has no cap, within limit 50 → new provider" in text
    assert "≤ limit" not in text
    # an uncapped group's customer past the day's limit: the limit, as without groups
    (rank, late) = next((r, e) for e, p, r in rows if e.endswith("@example.com") and p == "klaviyo")
    assert f"limit: rank {rank} > limit 50 → stays with Klaviyo" in _explained(loaded, late)


@BOTH
def test_status_previews_the_coming_days_group_holds_and_the_report_says_why(
    tmp_path: Path,
) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100}, guardrails=(10, 0.15))
    _customers(loaded)
    run(loaded, 1)
    store = open_store(loaded.store_path)
    with store.backend.transaction():
        store.backend.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = 1")
        store.backend.execute(
            "UPDATE outbox SET status = 'bounced' WHERE id IN (SELECT o.id FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'email' AND o.day = 1 "
            "AND c.email LIKE '%@gmail.com' ORDER BY o.id LIMIT 5)"
        )
    store.close()
    why = (
        "mailbox group gmail held at 20: day 1: hard bounce rate 25% (5 of 20 sent) "
        "reached the hold line 15%"
    )
    # before day 2 runs: the hold it will apply, beside the day's own guardrail
    status = runner.invoke(app, ["status", str(loaded.path), "--now", "2026-12-01T18:00"])
    assert status.exit_code == 0, status.output
    rail = status.output[status.output.index("guardrail ") :]
    assert why in rail.split("\nnext")[0]
    as_json = runner.invoke(app, ["status", str(loaded.path), "--json"])
    assert json.loads(as_json.output)["guardrail"]["groups_held"] == [why]
    run(loaded, 2)
    html = tmp_path / "report.html"
    report = runner.invoke(app, ["report", str(loaded.path), "--html", str(html)])
    assert report.exit_code == 0, report.output
    assert "<td>held: day 1: hard bounce rate 25% (5 of 20 sent) reached" in html.read_text()
