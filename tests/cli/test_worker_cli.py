"""``warmup worker`` from the command line: a rehearsal moves its clock with ``--now`` as
``warmup run`` and ``warmup sync`` do, or a day's email (due at the plan's send time, in the
future of the real clock) waits for ever."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.storefill import add_emails_due
from warmup.cli import app
from warmup.email.sink import smtp_sink
from warmup.plan import load_plan
from warmup.store import open_store

REPO = Path(__file__).resolve().parents[2]
NOW = "2026-12-01T00:00:00+00:00"
DUE = "2030-01-01T09:00:00+00:00"  # the day's send time, years after the real clock

runner = CliRunner()


def write_plan(folder: Path, new: dict[str, object] | None = None, count: int = 3) -> Path:
    plan = {
        "name": "worker-cli",
        "timezone": "Europe/Prague",
        "start_date": "2030-01-01",
        "scenario": str(REPO / "scenarios" / "variant-1.yaml"),
        "templates": str(REPO / "templates"),
        "sender": {"from": "Acme News <news@send.acme.example>", "reply_to": "care@acme.example"},
        "unsubscribe": {"url": "https://acme.example/unsubscribe"},
        "providers": {
            "new": new or {"kind": "file", "directory": str(folder / "out")},
            "klaviyo": {"exclusion_list": {"name": "x"}, "unsubscribe_list": {"name": "u"}},
        },
        "schedule": {"days": [{"day": 1, "new": 3, "template": "day-01"}]},
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    add_emails_due(load_plan(path).store_path, count, key="worker-cli", now=NOW, not_before=DUE)
    return path


def test_worker_now_sends_the_rehearsed_days_email(tmp_path: Path) -> None:
    plan = str(write_plan(tmp_path))
    early = runner.invoke(app, ["worker", plan, "--day", "1"])
    assert early.exit_code == 0, early.output
    assert "0 sent" in early.output and "3 waiting" in early.output

    rehearsed = runner.invoke(app, ["worker", plan, "--day", "1", "--now", "2030-01-01T10:05"])
    assert rehearsed.exit_code == 0, rehearsed.output
    assert "3 sent" in rehearsed.output and "0 waiting" in rehearsed.output
    assert len(list((tmp_path / "out").glob("*.eml"))) == 3


def test_worker_now_garbage_is_invalid_input(tmp_path: Path) -> None:
    plan = str(write_plan(tmp_path))
    result = runner.invoke(app, ["worker", plan, "--now", "garbage"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["worker", "sync", "explain"])
@pytest.mark.parametrize("day", ["0", "2"])
def test_a_day_outside_the_plan_is_invalid_input(tmp_path: Path, command: str, day: str) -> None:
    plan = str(write_plan(tmp_path))  # one day
    args = [command, plan, "--day", day]
    if command == "explain":
        args.insert(2, "user0@example.com")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"day {day} is not in plan worker-cli: it has days 1–1" in result.output
    assert not (tmp_path / "out").exists()


def test_a_slow_hand_over_outlives_a_short_lease_without_false_uncertain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes longer to answer than the lease: the worker's own lease loop (and
    any peer's) must not take the message in flight for a dead worker's and mark it uncertain;
    the `sending` lease covers the provider's timeout."""
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "test-secret-0123456789abcdef")
    with smtp_sink() as sink:
        sink.data_delay = 2.5
        smtp = {
            "kind": "smtp",
            "host": "127.0.0.1",
            "port": sink.port,
            "tls": "none",
            "max_connections": 2,
            "timeout_seconds": 10,
        }
        plan = str(write_plan(tmp_path, smtp, count=12))
        result = runner.invoke(
            app, ["worker", plan, "--day", "1", "--lease-seconds", "1", "--now", "2030-01-01T10:05"]
        )
        assert result.exit_code == 0, result.output
        assert "12 sent" in result.output and "0 uncertain" in result.output, result.output
        assert "mid-delivery" not in result.output, result.output
        assert sink.count == 12
    with closing(open_store(load_plan(Path(plan)).store_path)) as store:
        errors = store.backend.execute("SELECT last_error FROM outbox").fetchall()
    assert [e for (e,) in errors if e] == []
