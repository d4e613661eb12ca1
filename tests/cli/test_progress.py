"""Progress bars draw on a terminal only, and the dispatch poller reads the store's counts."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import pytest

from warmup.cli.progress import polled_progress, progress_bar
from warmup.dispatch import outbox_progress
from warmup.store import open_store


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_terminal_means_no_bar_and_no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with polled_progress("x", lambda: (calls.append(1), (0, 0))[1], interval=0.01):
        time.sleep(0.05)
    assert calls == []


def test_on_a_terminal_the_poller_reads_until_the_block_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    calls: list[int] = []

    def read() -> tuple[int, int]:
        calls.append(1)
        return len(calls), 100

    with polled_progress("day 1 dispatch", read, interval=0.01):
        time.sleep(0.1)
    seen = len(calls)
    assert seen >= 2
    time.sleep(0.05)
    assert len(calls) == seen  # stopped with the block
    assert not [t for t in threading.enumerate() if t.name == "progress"]
    assert "actions/s" in terminal.getvalue()


def test_quiet_silences_even_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar("import", 10, quiet=True) as update:
        update(5)
    assert terminal.getvalue() == ""


def test_outbox_progress_counts_finished_actions_of_the_day(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    rows = [
        ("a", 1, "sent"),
        ("b", 1, "pending"),
        ("c", 1, "uncertain"),
        ("d", 1, "sending"),
        ("e", 2, "sent"),
    ]
    store.conn.executemany(
        "INSERT INTO outbox (key, day, node_id, kind, provider, status, created_at, updated_at) "
        "VALUES (?, ?, 'n', 'email', 'new', ?, 't', 't')",
        rows,
    )
    assert outbox_progress(store, 1) == (2, 4)
    assert outbox_progress(store, 3) == (0, 0)
