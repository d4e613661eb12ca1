"""Hostile CSVs: too many columns, every row rejected, an unbalanced quote, and spreadsheet
formulas in the rejects file (OWASP CSV injection)."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from warmup.cli import app

REPO = Path(__file__).resolve().parents[2]
PLAN = str(REPO / "plans" / "example.yaml")
runner = CliRunner()


def test_five_thousand_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = ["Email", *(f"c{i}" for i in range(5000))]
    path.write_text(",".join(header) + "\n" + "a@example.com" + "," * 5000 + "\n")
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:1:" in result.output and "5,001 columns" in result.output
    assert "unexpected" not in result.output


def test_every_row_rejected_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Email,First Name\nnot-an-email,A\nalso bad,B\n")
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2, result.output
    assert "rows rejected     2" in result.output and "nothing was imported" in result.output


def test_an_unbalanced_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    rows = [f"user{i}@example.com,Name{i}" for i in range(6)]
    rows[2] = 'user2@example.com,"Name2'  # line 4 of the file (the header is line 1)
    path.write_text("Email,First Name\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:4:" in result.output and "quote" in result.output


def test_rejects_file_neutralises_spreadsheet_formulas(tmp_path: Path) -> None:
    path = tmp_path / "formulas.csv"
    path.write_text(
        "Email,Phone Number\n"
        'ok@example.com,\n=HYPERLINK("http://evil.example"),\n+cmd|calc,\n'
        "-2+3,\n@SUM(A1),\nfine@example.com,=1+1\n"
    )
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 0, result.output
    rejects = next(tmp_path.parent.rglob("formulas.rejects-*.csv"), None) or next(
        Path(PLAN).parent.glob("formulas.rejects-*.csv"), None
    )
    assert rejects is not None, result.output
    try:
        with rejects.open(newline="", encoding="utf-8") as handle:
            values = [row[2] for row in list(csv.reader(handle))[1:]]
        assert values and all(not v.startswith(("=", "+", "-", "@")) for v in values), values
        assert '\'=HYPERLINK("http://evil.example")' in values
        # a phone that is not E.164 no longer refuses its row: only the phone is dropped
        assert "fine@example.com" not in "".join(values)
    finally:
        rejects.unlink()


def test_devices_are_refused_without_reading_them() -> None:
    # /dev/zero has no line end: read as a CSV it would fill memory without bound
    for command in (["import", PLAN], ["events", "import", PLAN]):
        for device in ("/dev/zero", "/dev/urandom"):
            result = runner.invoke(app, [*command, device])
            assert result.exit_code == 2, (command, device, result.output)
            assert f"{device}:" in result.output and "regular file" in result.output
            assert "unexpected" not in result.output


def test_a_header_only_file_says_nothing_was_imported(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("Email,First Name\n")
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2:" in result.output and "no rows; nothing was imported" in result.output
    # the summary above the error does not claim the contrary
    assert "imported" not in result.output.split("error:")[0], result.output
    assert "no customer loaded" in result.output


def test_a_latin1_file_is_located_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    rows = [f"user{i}@example.com,Name{i}" for i in range(3000)]  # past the decoder's read-ahead
    rows[2500] = "user2500@example.com,Andr\xe9"  # line 2502 of the file, column 26
    path.write_bytes(("Email,First Name\n" + "\n".join(rows) + "\n").encode("latin-1"))
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2502:26: byte 0xE9" in result.output, result.output
    assert "save it as UTF-8" in result.output
    # a bad byte in the first chunk was blamed on line 1 before
    path.write_bytes(b"Email,First Name\nok@example.com,Ren\xe9e\n")
    result = runner.invoke(app, ["import", PLAN, str(path)])
    assert result.exit_code == 2 and f"{path}:2:19: byte 0xE9" in result.output, result.output
