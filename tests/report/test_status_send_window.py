"""With a send window, `warmup status`'s next step says when the day's mail goes out, not
only the send time: a plan with send time 10:00 and a 14:00–18:00 window said "mails at
10:00", though the first message waits for 14:00."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.support.dayfill import open_for
from tests.support.plans import write_plan
from warmup.plan import load_plan
from warmup.report.status import plan_status


def test_the_next_step_names_the_window(tmp_path: Path) -> None:
    window = {"start": "14:00", "end": "18:00", "shape": "even"}
    loaded = load_plan(write_plan(tmp_path, settings={"schedule": {"send_window": window}}))
    open_for(loaded.store_path).close()
    before = plan_status(loaded, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert "(mails at 10:00 +01:00, spread over 14:00–18:00 (even)):" in before.next_action
    due = plan_status(loaded, now=datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert "spread over 14:00–18:00 (even)" in due.next_action
