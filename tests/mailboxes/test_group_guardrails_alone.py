"""``guardrails.groups`` alone (no ``schedule.mailbox_caps``, no ``mailboxes:``) turns mailbox
groups on: a group's own hold lines hold it. Before, such a plan validated and listed the lines,
but no day recorded groups, so the lines never held anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mailboxes.test_allocation_run import mailbox_days, run
from tests.support.consent import add_customers, write_plan
from warmup.plan import load_plan
from warmup.store import open_store


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "mailbox-test-secret")


def test_a_groups_own_hold_line_without_caps(tmp_path: Path) -> None:
    loaded = write_plan(tmp_path)
    text = loaded.path.read_text()
    start = text.index("{day: 1, new: ")
    text = text[:start] + "{day: 1, new: 50" + text[text.index(",", start + 12) :]
    text = text.replace("min_sample: 200", "min_sample: 10")
    text = text.replace("rollback: {hard_bounce_rate: 0.05", "rollback: {hard_bounce_rate: 0.5")
    text = text.replace("hold: {hard_bounce_rate: 0.02", "hold: {hard_bounce_rate: 0.4")
    text = text.replace(
        "guardrails:\n", "guardrails:\n  groups: {gmail: {hold: {hard_bounce_rate: 0.2}}}\n"
    )
    assert "mailbox_caps" not in text and "\nmailboxes:" not in text
    loaded.path.write_text(text)
    loaded = load_plan(loaded.path)
    store = open_store(loaded.store_path)
    # built-in domains only: no MX lookup
    add_customers(
        store,
        [f"g{i:03d}@gmail.com" for i in range(40)] + [f"m{i:03d}@outlook.com" for i in range(40)],
    )
    store.close()
    run(loaded, 1)
    store = open_store(loaded.store_path)
    with store.transaction() as conn:
        conn.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = 1")
        conn.execute(
            "UPDATE outbox SET status = 'bounced' WHERE id IN (SELECT o.id FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'email' AND o.day = 1 "
            "AND c.email LIKE '%@gmail.com' ORDER BY o.id LIMIT 6)"
        )
    store.close()
    gmail_day_1 = mailbox_days(loaded, 1)["gmail"][2]
    preview = run(loaded, 2, "--dry-run")
    assert f"mailbox group gmail held at {gmail_day_1}:" in preview
    assert "the hold line 20%" in preview
