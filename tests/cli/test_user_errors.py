"""Every error a user can cause names the file/line or the option, and says what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.dayfill import add_customers, open_for
from warmup.cli import app
from warmup.plan import load_plan

REPO = Path(__file__).resolve().parents[2]
PLAN = str(REPO / "plans" / "example.yaml")
BROKEN = REPO / "tests" / "plan" / "broken_plans"
runner = CliRunner()


def with_store(tmp: Path) -> None:
    store = open_for(load_plan(PLAN).store_path)
    add_customers(store, 3)
    store.close()


def nothing(tmp: Path) -> None:
    return None


def existing_init(tmp: Path) -> None:
    runner.invoke(app, ["init", str(tmp / "p")])


# (id, setup, argv with {tmp}, exit code, texts the output must hold: what/where, then the fix)
CASES: list[tuple[str, Callable[[Path], None], list[str], int, list[str]]] = [
    (
        "validate-missing-file",
        nothing,
        ["validate", "{tmp}/nope.yaml"],
        2,
        ["nope.yaml", "check the path"],
    ),
    (
        "validate-bad-timezone",
        nothing,
        ["validate", str(BROKEN / "bad_timezone.yaml")],
        2,
        ["bad_timezone.yaml:", "IANA name"],
    ),
    (
        "import-missing-csv",
        nothing,
        ["import", PLAN, "{tmp}/nope.csv"],
        2,
        ["nope.csv", "check the path"],
    ),
    (
        "sample-zero",
        nothing,
        ["sample", "0", "--out", "{tmp}/x.csv"],
        2,
        ["COUNT", "warmup sample --help"],
    ),
    ("schema-unknown-kind", nothing, ["schema", "planz"], 2, ["planz", "warmup schema --help"]),
    (
        "graph-unknown-scenario",
        nothing,
        ["graph", "variant-9"],
        2,
        ["variant-9", "variant-1, variant-2"],
    ),
    (
        "graph-unknown-format",
        nothing,
        ["graph", "variant-1", "--format", "svg"],
        2,
        ["--format svg", "mermaid, dot"],
    ),
    (
        "init-overwrite",
        existing_init,
        ["init", "{tmp}/p"],
        2,
        ["p/plan.yaml already exists", "--force"],
    ),
    (
        "init-bad-volume",
        nothing,
        ["init", "{tmp}/q", "--end-volume", "lots"],
        2,
        ["--end-volume", "like 50%"],
    ),
    (
        "init-bad-timezone",
        nothing,
        ["init", "{tmp}/q", "--timezone", "Mars/Base"],
        2,
        ["--timezone", "Europe/Prague"],
    ),
    (
        "init-bad-date",
        nothing,
        ["init", "{tmp}/q", "--start-date", "2027-13-01"],
        2,
        ["--start-date", "warmup init --help"],
    ),
    ("status-no-store", nothing, ["status", PLAN], 1, ["does not exist", "warmup import"]),
    (
        "report-bad-day",
        with_store,
        ["report", PLAN, "--html", "{tmp}/r.html", "--day", "0"],
        2,
        ["--day 0", "from 1 to 14"],
    ),
    (
        "report-not-html",
        with_store,
        ["report", PLAN, "--html", "{tmp}/r.pdf"],
        2,
        ["--html", ".html"],
    ),
    (
        "demo-bad-days",
        nothing,
        ["demo", "--dir", "{tmp}/d", "--days", "40"],
        2,
        ["--days 40", "from 1 to 14"],
    ),
    (
        "run-day-out-of-plan",
        with_store,
        ["run", PLAN, "--day", "99"],
        2,
        ["day 99", "--day between"],
    ),
    (
        "run-day-order",
        with_store,
        ["run", PLAN, "--day", "3", "--no-dispatch"],
        3,
        ["day 3", "--day"],
    ),
    (
        "explain-unknown-customer",
        with_store,
        ["explain", PLAN, "--day", "1", "x@y.example"],
        2,
        ["x@y.example", "import the export"],
    ),
    (
        "sync-without-key",
        with_store,
        ["sync", PLAN],
        2,
        ["KLAVIYO_API_KEY", "export KLAVIYO_API_KEY"],
    ),
]


@pytest.mark.parametrize(
    ("setup", "argv", "code", "texts"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_user_error_names_the_place_and_the_fix(
    tmp_path: Path, setup: Callable[[Path], None], argv: list[str], code: int, texts: list[str]
) -> None:
    setup(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for text in texts:
        assert text in result.output, (text, result.output)


def test_run_bad_now_names_the_option(tmp_path: Path) -> None:
    with_store(tmp_path)
    result = runner.invoke(app, ["run", PLAN, "--day", "1", "--now", "garbage"])
    assert result.exit_code == 2
    assert "--now" in result.output


def test_events_import_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with_store(tmp_path)
    result = runner.invoke(app, ["events", "import", PLAN, str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output and " — " in result.output
