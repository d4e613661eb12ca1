"""Guardrails inside `warmup run`: a rollback refuses the day (exit 3) with the figures, an
override runs it at the rolled-back volume and is recorded, a hold repeats a healthy volume."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.consent import add_customers, write_plan
from warmup.cli import app
from warmup.plan import LoadedPlan, load_plan
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "guardrail-test-secret")


@pytest.fixture
def plan(tmp_path: Path) -> LoadedPlan:
    loaded = write_plan(tmp_path)
    text = loaded.path.read_text()
    for day, volume in ((1, 40), (2, 80), (3, 120)):
        text = text.replace(
            f"{{day: {day}, new: {50 if day < 3 else 100},", f"{{day: {day}, new: {volume},"
        )
    loaded.path.write_text(text.replace("min_sample: 200", "min_sample: 30"))
    loaded = load_plan(loaded.path)
    store = open_store(loaded.store_path)
    add_customers(store, [f"r{i:03d}@example.com" for i in range(200)])
    store.close()
    return loaded


def run(plan: LoadedPlan, day: int, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "run",
            str(plan.path),
            "--day",
            str(day),
            "--no-dispatch",
            "--now",
            f"2026-12-0{day}T12:00",
            *extra,
        ],
        terminal_width=100,
    )
    return result.exit_code, result.output


def deliver(plan: LoadedPlan, day: int, bounces: int) -> None:
    """What the email dispatcher would leave: every mail sent, ``bounces`` of them refused."""
    store = open_store(plan.store_path)
    with store.transaction() as conn:
        conn.execute("UPDATE outbox SET status = 'sent' WHERE kind = 'email' AND day = ?", (day,))
        conn.execute(
            "UPDATE outbox SET status = 'bounced' WHERE id IN (SELECT id FROM outbox "
            "WHERE kind = 'email' AND day = ? ORDER BY id LIMIT ?)",
            (day, bounces),
        )
    store.close()


def day_row(plan: LoadedPlan, day: int) -> tuple[object, ...]:
    store = open_store(plan.store_path)
    row = store.conn.execute(
        "SELECT new_allocated, volume_day, guardrail_override FROM days WHERE day = ?", (day,)
    ).fetchone()
    store.close()
    return tuple(row)


def test_rollback_refuses_then_override_runs_at_the_rolled_back_volume(plan: LoadedPlan) -> None:
    assert run(plan, 1)[0] == 0
    deliver(plan, 1, bounces=3)  # 3 of 40 = 7.5%
    code, output = run(plan, 2)
    assert code == 3
    assert "hard bounce rate 7.50% (3 of 40 sent) reached the rollback line 5%" in output
    assert "--override-guardrail" in output
    code, output = run(plan, 2, "--override-guardrail", "removed a purchased list")
    assert code == 0, output
    assert day_row(plan, 2) == (40, 1, "removed a purchased list")
    deliver(plan, 2, bounces=0)
    assert run(plan, 3)[0] == 0  # healthy again: one step on, day 2's volume
    assert day_row(plan, 3) == (80, 2, None)


def test_hold_repeats_the_volume(plan: LoadedPlan) -> None:
    assert run(plan, 1)[0] == 0
    deliver(plan, 1, bounces=1)  # 1 of 40 = 2.5%: hold
    code, output = run(plan, 2)
    assert code == 0, output
    assert "guardrails hold the ramp at day 1's volume" in output
    assert day_row(plan, 2) == (40, 1, None)
