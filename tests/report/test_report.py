from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report.conftest import screenshot
from tests.report.png import colour_counts, pixels_near
from tests.support.dayfill import add_customers, add_day, open_for
from warmup.cli import app
from warmup.plan import LoadedPlan, load_plan
from warmup.report import svg
from warmup.report.html import render_report, write_report

runner = CliRunner()
V1_ALL = ("229", "7", "19", "40", "299", "limit", "225", "256", "email")
V1_KLAVIYO = ("229", "7", "19", "40", "299", "limit")
V1_EARLIER = ("229", "7", "19", "40", "limit", "225", "256", "email")


@pytest.fixture
def loaded(example_plan: Path) -> LoadedPlan:
    return load_plan(example_plan)


def two_days(loaded: LoadedPlan) -> None:
    store = open_for(loaded.store_path)
    ids = add_customers(store, 1000)
    add_day(
        store,
        1,
        "2026-12-01",
        status="completed",
        new=ids[:300],
        klaviyo=ids[300:],
        email_status={"bounced": 4, "sent": 296},
        events={"hard_bounced": 4, "unsubscribed": 2},
        paths={V1_ALL: ids[:300], V1_KLAVIYO: ids[300:]},
    )
    add_day(
        store,
        2,
        "2026-12-02",
        status="completed",
        new=ids[:500],
        klaviyo=ids[500:],
        email_status={"sent": 500},
        events={"complained": 1},
        paths={V1_EARLIER: ids[:300], V1_ALL: ids[300:500], V1_KLAVIYO: ids[500:]},
    )
    store.close()


def test_report_is_self_contained(loaded: LoadedPlan) -> None:
    two_days(loaded)
    html = render_report(loaded)
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no scripts, no external URLs in src/href
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert html.count("<svg") == 5  # ramp, three rate charts, funnel


def test_funnel_counts_come_from_journeys(loaded: LoadedPlan) -> None:
    two_days(loaded)
    html = render_report(loaded, day=2)
    assert "Funnel of day 2" in html

    def count_of(node: str) -> str:
        match = re.search(rf'data-node="{node}">.*?class="count">([\d,]+)<', html)
        assert match, node
        return match.group(1)

    assert count_of("229") == "1,000"
    assert count_of("299") == "700"  # earlier days' customers skip the wait
    assert count_of("email") == "500"
    assert ">yes 300<" in html and ">no 700<" in html  # #40's branches
    day1 = render_report(loaded, day=1)
    assert re.search(r'data-node="299">.*?class="count">1,000<', day1)


def test_report_command_and_bad_day(loaded: LoadedPlan, example_plan: Path, tmp_path: Path) -> None:
    two_days(loaded)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(example_plan), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out}\n"
    assert "Funnel of day 2" in out.read_text()
    bad = runner.invoke(app, ["report", str(example_plan), "--html", str(out), "--day", "15"])
    assert bad.exit_code == 2
    assert "--day 15" in bad.output and "from 1 to 14" in bad.output
    wrong = runner.invoke(app, ["report", str(example_plan), "--html", str(tmp_path / "r.pdf")])
    assert wrong.exit_code == 2 and "--html" in wrong.output and ".html" in wrong.output


@pytest.mark.slow
def test_browser_shows_the_charts(loaded: LoadedPlan, tmp_path: Path, chromium: str) -> None:
    two_days(loaded)
    page = write_report(loaded, tmp_path / "report.html")
    shot = colour_counts(screenshot(chromium, page, tmp_path / "top.png"))
    # Ramp bars: planned, sent and Klaviyo in their own colours, far more than legend swatches.
    for colour in (svg.PLANNED, svg.NEW_SENT, svg.KLAVIYO):
        assert pixels_near(shot, colour) > 2000, colour
    tall = colour_counts(screenshot(chromium, page, tmp_path / "all.png", height=3000))
    for colour in (svg.HOLD, svg.ROLLBACK):  # guardrail lines across the rate charts
        assert pixels_near(tall, colour) > 1500, colour
    for colour in (svg.NODE_FILL["audience"], svg.NODE_FILL["email"]):  # funnel boxes
        assert pixels_near(tall, colour) > 10000, colour


@pytest.mark.slow
def test_browser_sees_no_sent_bars_before_any_day(
    loaded: LoadedPlan, tmp_path: Path, chromium: str
) -> None:
    open_for(loaded.store_path).close()
    page = write_report(loaded, tmp_path / "report.html")
    shot = colour_counts(screenshot(chromium, page, tmp_path / "top.png"))
    assert pixels_near(shot, svg.PLANNED) > 2000
    assert pixels_near(shot, svg.NEW_SENT) < 400  # the legend swatch only
