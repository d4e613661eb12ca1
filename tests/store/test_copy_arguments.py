"""`warmup store copy` with a folder as the destination is a mistake in the command (exit 2,
what to write): it exited 1 with "unable to open database file". (A missing source, exit 2
too, is in test_copy's CLI test.)"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from warmup.cli import app
from warmup.store import open_store

runner = CliRunner()


def test_a_folder_as_the_destination_is_invalid_input(tmp_path: Path) -> None:
    open_store(tmp_path / "store.db").close()
    result = runner.invoke(app, ["store", "copy", str(tmp_path / "store.db"), str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path} is a folder — name the store's file" in result.output
