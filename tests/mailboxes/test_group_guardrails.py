"""A mailbox group's own hold lines (``guardrails.groups.NAME``): a group is held by its own
lines where the plan sets them and by the plan's elsewhere; a group the plan does not know is
refused at its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.mailboxes.mailbox_helpers import mailbox_plan
from tests.mailboxes.test_allocation_run import _customers, mailbox_days, run
from warmup.cli import app
from warmup.plan import LoadedPlan, load_plan
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "mailbox-test-secret")


def _with_groups(loaded: LoadedPlan, groups: str) -> LoadedPlan:
    text = loaded.path.read_text().replace("guardrails:\n", f"guardrails:\n  groups: {groups}\n")
    loaded.path.write_text(text)
    return load_plan(loaded.path)


def _bounce_gmail(loaded: LoadedPlan) -> None:
    """Day 1's gmail mail: 5 of its 20 hard-bounced (25%); the day as a whole 10%."""
    run(loaded, 1)
    store = open_store(loaded.store_path)
    with store.transaction() as conn:
        conn.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = 1")
        conn.execute(
            "UPDATE outbox SET status = 'bounced' WHERE id IN (SELECT o.id FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'email' AND o.day = 1 "
            "AND c.email LIKE '%@gmail.com' ORDER BY o.id LIMIT 5)"
        )
    store.close()


@pytest.mark.parametrize(
    ("groups", "held"),
    [
        # the plan's line (30%) lets gmail's 25% through…
        ("{}", False),
        # …gmail's own 20% line holds it
        ("{gmail: {hold: {hard_bounce_rate: 0.2}}}", True),
        # its own line, but its own sample is not reached yet: rates do not count
        ("{gmail: {min_sample: 50, hold: {hard_bounce_rate: 0.2}}}", False),
        # another group's line does not apply to gmail
        ("{microsoft: {hold: {hard_bounce_rate: 0.01}}}", False),
    ],
)
def test_a_groups_own_hold_line(tmp_path: Path, groups: str, held: bool) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50, 2: 100}, guardrails=(10, 0.30))
    loaded = _with_groups(loaded, groups)
    _customers(loaded)
    _bounce_gmail(loaded)
    preview = run(loaded, 2, "--dry-run")
    assert "guardrails hold" not in preview
    line = "mailbox group gmail held at 20: day 1: hard bounce rate 25% (5 of 20 sent) reached"
    assert (line in preview) is held
    if held:
        assert "the hold line 20%" in preview
        run(loaded, 2)
        assert mailbox_days(loaded, 2)["gmail"][1:] == (20, 20, True)
        assert mailbox_days(loaded, 2)["microsoft"][3] is False


def test_an_unknown_group_is_refused_at_its_line(tmp_path: Path) -> None:
    loaded = mailbox_plan(tmp_path, volumes={1: 50})
    text = loaded.path.read_text().replace(
        "guardrails:\n", "guardrails:\n  groups:\n    gmial: {hold: {complaint_rate: 0.0005}}\n"
    )
    loaded.path.write_text(text)
    line = text.splitlines().index("    gmial: {hold: {complaint_rate: 0.0005}}") + 1
    result = runner.invoke(app, ["validate", str(loaded.path)])
    assert result.exit_code == 2, result.output
    assert f"plan.yaml:{line}" in result.output
    assert "mailbox group 'gmial' is not defined" in result.output
    assert "did you mean 'gmail'?" in result.output
