"""``events.sns.trust_url_prefixes_for_tests`` trusts certificate and subscribe URLs by prefix,
so a prefix must end inside a path: ``http`` trusted every URL, and ``http://127.0.0.1:8711``
(no slash) trusted ``http://127.0.0.1:8711@evil.example/x.pem`` — a forged SNS message signed
with the forger's own certificate was stored. Such a prefix is refused at its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.plans import write_plan
from warmup.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "prefix", ["http", "http://", "http://127.0.0.1:8711", "ftp://127.0.0.1:8711/", "/x/"]
)
def test_a_prefix_that_is_not_a_url_up_to_a_path_is_refused_at_its_line(
    tmp_path: Path, prefix: str
) -> None:
    plan = write_plan(tmp_path, settings={"events": {"sns": {"trust_url_prefixes_for_tests": []}}})
    text = plan.read_text().replace(
        "trust_url_prefixes_for_tests: []", f"trust_url_prefixes_for_tests:\n    - '{prefix}'"
    )
    plan.write_text(text)
    line = text.splitlines().index(f"    - '{prefix}'") + 1
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 2, result.output
    assert f"plan.yaml:{line}:" in result.output
    assert "is not a URL prefix up to a path" in result.output
    assert "Traceback" not in result.output


def test_the_sandboxs_own_prefix_is_accepted(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        settings={"events": {"sns": {"trust_url_prefixes_for_tests": ["http://127.0.0.1:8711/"]}}},
    )
    result = runner.invoke(app, ["validate", str(plan)])
    assert result.exit_code == 0, result.output
