"""`warmup validate` names the store as the plan wrote it: a PostgreSQL URL kept its ``//``
(the summary printed the Path-folded `postgresql:/host/db`, a URL nobody can paste)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.plans import write_plan
from warmup.cli import app

runner = CliRunner()


def test_the_summary_shows_a_postgresql_store_as_its_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARMUP_STORE")  # the suite's default store would override the plan's
    url = "postgresql://postgres@127.0.0.1/acme_warmup"
    plan = write_plan(tmp_path, settings={"store": url})
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
    assert f"store      {url}\n" in result.output
