"""A busy port is named with a way out (`--port 0`), not "unexpected OSError"; a missing store
gives the real command for this plan; a held lock gives a way to clear it that exists."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app
from warmup.errors import LockHeld
from warmup.store import open_store

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "plans" / "example.yaml"
runner = CliRunner()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_sandbox_on_a_busy_port(busy_port: int) -> None:
    result = runner.invoke(app, ["sandbox", "--port", str(busy_port)])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{busy_port}" in result.output and "--port 0" in result.output
    assert "unexpected" not in result.output


def test_serve_on_a_busy_port(busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "x" * 32)
    open_store(os.environ["WARMUP_STORE"]).close()
    result = runner.invoke(app, ["serve", str(PLAN), "--port", str(busy_port)])
    assert result.exit_code == 2, result.output
    assert "--port 0" in result.output and "unexpected" not in result.output


def test_serve_on_a_host_of_another_machine_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "x" * 32)
    open_store(os.environ["WARMUP_STORE"]).close()
    result = runner.invoke(app, ["serve", str(PLAN), "--host", "8.8.8.8", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "8.8.8.8 is not an address of this machine" in result.output, result.output
    assert "--host 127.0.0.1" in result.output and "--port" not in result.output


def test_missing_store_names_the_real_command() -> None:
    result = runner.invoke(app, ["status", str(PLAN)])
    assert result.exit_code == 1
    assert f"warmup import {PLAN} " in result.output
    assert "PLAN FILE.csv" not in result.output


def test_a_held_lock_names_a_way_to_clear_it_that_exists(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    store.conn.execute(
        "INSERT INTO locks (name, pid, host, acquired_at) VALUES ('run', 1, 'elsewhere', 't')"
    )
    with pytest.raises(LockHeld) as caught, store.lock("run"):
        pass
    store.close()
    hint = caught.value.render()
    assert "warmup unlock" not in hint
    assert f"sqlite3 {tmp_path / 's.db'}" in hint and "DELETE FROM locks" in hint
