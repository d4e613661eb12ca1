"""Only IANA names are zones (never one that follows the machine's zone), and `--now` reads an
instant written the way warmup prints it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app
from warmup.clock import parse_moment, show
from warmup.errors import InvalidInput

runner = CliRunner()


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Factory", "posix/Europe/Prague"])
def test_init_refuses_a_zone_that_is_not_a_place(tmp_path: Path, name: str) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--timezone", name])
    assert result.exit_code == 2, result.output
    assert f"--timezone {name!r} is not a time zone — write an IANA name" in result.output
    assert not (tmp_path / "p").exists()


def test_init_takes_an_iana_link_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--timezone", "US/Eastern"])
    assert result.exit_code == 0, result.output


def test_now_reads_what_warmup_prints() -> None:
    tz = "America/New_York"
    for instant in (
        datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
        datetime(2027, 11, 7, 6, 30, tzinfo=UTC),
    ):
        printed = show(instant, tz)  # 2027-11-07 01:30 -04:00 / -05:00 America/New_York
        assert parse_moment(printed, tz) == instant
        assert parse_moment(printed.removesuffix(f" {tz}"), tz) == instant
    # Another zone's name is read in that zone.
    prague = parse_moment("2027-11-07 07:30 Europe/Prague", tz)
    assert prague == datetime(2027, 11, 7, 6, 30, tzinfo=UTC)
    assert parse_moment("2027-11-07 07:30 +01:00 Europe/Prague", tz) == prague
    # The repeated hour without its offset is still refused, whichever way it is written.
    with pytest.raises(InvalidInput, match="ambiguous: 01:30 happens twice on 2027-11-07"):
        parse_moment("2027-11-07 01:30 America/New_York", tz)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2027-11-07 01:30 -03:00 America/New_York",
            "America/New_York is not at -03:00 then — write -04:00 or -05:00",
        ),
        ("2027-11-07 10:30 -04:00 America/New_York", "write -05:00, or leave the offset out"),
        ("2027-11-07 01:30 -05:00 localtime", "'localtime' is not a time zone"),
        ("2027-11-07 01:30 -05:00 Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ],
)
def test_now_refuses_a_zone_name_that_does_not_fit(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_moment(text, "America/New_York")
    assert message in caught.value.render()
