"""Store locations a user can get wrong: a URL of another engine, a PostgreSQL URL without a
host (``postgresql:///db``, which libpq reads as a local socket but a plan's path folding
would turn into the host ``db``), a password in the URL. Each is refused as invalid input
(exit 2) before anything is made or dialled."""

from __future__ import annotations

import socket
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.plans import write_plan
from warmup.cli import app
from warmup.store import open_store

runner = CliRunner()


def test_copy_to_a_url_of_another_engine_is_refused_and_makes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with closing(open_store(tmp_path / "acme.db")):
        pass
    result = runner.invoke(app, ["store", "copy", "acme.db", "mysql://db-host/acme"])
    assert result.exit_code == 2, result.output
    assert "mysql://db-host/acme" in result.output and "postgresql://" in result.output
    assert not (tmp_path / "mysql:").exists()


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("mysql://db-host/acme", "postgresql://"),
        ("sqlite:///acme.db", "file path"),
        ("postgresql:///acme", "host"),
        ("postgresql://warmup:hunter2@db-host/acme", "PGPASSWORD"),
    ],
)
def test_a_wrong_store_url_is_invalid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str, words: str
) -> None:
    plan = write_plan(tmp_path)
    monkeypatch.setenv("WARMUP_STORE", location)
    result = runner.invoke(app, ["status", str(plan)])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "mysql:").exists() and not Path("mysql:").exists()


def test_validate_names_the_plans_store_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARMUP_STORE")
    plan = write_plan(tmp_path, settings={"store": "postgresql:///acme"})
    result = runner.invoke(app, ["validate", str(plan)], terminal_width=200)
    assert result.exit_code == 2, result.output
    line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1) if "store:" in text)
    assert f"plan.yaml:{line}:" in result.output and "names no host" in result.output


def test_a_server_that_is_down_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan = write_plan(tmp_path)
    monkeypatch.setenv("WARMUP_STORE", f"postgresql://postgres@127.0.0.1:{port}/acme")
    result = runner.invoke(app, ["status", str(plan)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: cannot open store"), result.output
    assert result.output.count("\n") == 1 and "createdb" in result.output
