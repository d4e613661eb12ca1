"""What a re-run and `status` say after a run was stopped: an interrupted day is not a failed
one, and a day whose emails are still unsent says so instead of "completed"."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pendulum
import pytest

from tests.support.storefill import fill_store, write_plan
from warmup.engine import run_day
from warmup.plan import load_plan
from warmup.report.status import plan_status


def at(text: str) -> datetime:
    return pendulum.parse(text, tz="Europe/Prague")  # type: ignore[return-value]


def test_ctrl_c_before_sending_is_interrupted_not_failed(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 60, seed=3)
    loaded = load_plan(write_plan(tmp_path, variant=1, days=[5, 20, 30]))

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_day(loaded, 1, now=at("2026-12-01T11:00"), prepare=ctrl_c)
    status = plan_status(loaded, now=at("2026-12-01T11:01"))
    assert status.days[0].status != "failed"
    assert "interrupted; run it again" in status.next_action, status.next_action
    assert run_day(loaded, 1, now=at("2026-12-01T11:02")).status == "completed"


def test_a_rerun_with_unsent_email_counts_it(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 60, seed=3)
    loaded = load_plan(write_plan(tmp_path, variant=1, days=[5, 20, 30]))
    assert run_day(loaded, 1, now=at("2026-12-01T11:00")).status == "completed"
    # nothing was dispatched: the day's 5 emails wait in the outbox
    again = run_day(loaded, 1, now=at("2026-12-01T11:05"))
    assert again.notes == [
        "day 1's allocation was done earlier and kept as it was; 5 of its emails are still to send"
    ]
    assert not any("already completed" in note for note in again.notes)
