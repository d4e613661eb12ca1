"""The importer refuses what Klaviyo refuses, with the line and the reason."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from warmup import addresses
from warmup.importer import import_csv, is_valid_email
from warmup.plan import load_plan


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("a..b@example.com", "two dots in a row"),
        (".a@example.com", "starts with a dot"),
        ("a.@example.com", "ends with a dot"),
        ("ann\u202e@example.com", "U+202E"),
        ("ann\x00@example.com", "U+0000"),
        ("ann\u200f@example.com", "U+200F"),
    ],
)
def test_what_klaviyo_refuses_is_refused_with_its_reason(raw: str, reason: str) -> None:
    assert not is_valid_email(raw)
    assert reason in str(addresses.problem(raw))


@pytest.mark.parametrize("raw", ["ann@example.com", "a.b@example.com", "sofía@example.com"])
def test_ordinary_and_international_addresses_are_accepted(raw: str) -> None:
    assert is_valid_email(raw) and addresses.problem(raw) is None


def test_only_a_non_ascii_local_part_is_international() -> None:
    assert addresses.international("sofía@example.com")
    assert not addresses.international("sofia@example.com")


def test_the_import_names_line_and_reason(tmp_path: Path, example_plan: Path) -> None:
    source = tmp_path / "export.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name"])
        writer.writerows(
            [
                ["ann@example.com", "Ann"],
                ["bad..dots@example.com", "Bad"],
                ["eve\u202e@example.com", "Eve"],
                ["sofía@example.com", "Sofía"],
            ]
        )
    report = import_csv(load_plan(example_plan), source)
    assert report.rows_loaded == 2
    assert [(r.line, r.reason) for r in report.rejects] == [
        (3, "invalid email: two dots in a row (Klaviyo refuses it)"),
        (4, "invalid email: contains the invisible character U+202E (Klaviyo refuses it)"),
    ]


def test_domain_problems_say_why_and_what_to_write(tmp_path: Path, example_plan: Path) -> None:
    source = tmp_path / "domains.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email"])
        writer.writerows(
            [
                ["x@example..com"],
                ["x@-bad.example"],
                ["x@exa\u202emple.com"],
                ["ok4@bücher.example"],
                ["ok@example.com"],
            ]
        )
    report = import_csv(load_plan(example_plan), source)
    assert report.rows_loaded == 1
    reasons = {r.line: r.reason for r in report.rejects}
    assert "the domain has an empty part" in reasons[2] and "example.com" in reasons[2]
    assert "starts or ends with a hyphen (remove it)" in reasons[3]
    assert "U+202E" in reasons[4]
    # an internationalised domain is refused, not converted: Klaviyo holds the address as
    # exported, and a converted one would be another profile that is never excluded
    assert "internationalised" in reasons[5] and "ok4@xn--bcher-kva.example" in reasons[5]


def test_the_fast_check_accepts_only_what_the_full_check_accepts() -> None:
    """`is_valid` takes a one-regex shortcut for common addresses: it must never accept one
    that `problem` refuses (nor refuse one it accepts)."""
    local = [
        "a",
        "a.b",
        "a..b",
        ".a",
        "a.",
        "a+b",
        "a_b-c",
        "a b",
        'a"b',
        "ä",
        "a\u202eb",
        "x" * 64,
    ]
    local.append("x" * 65)
    domain = ["example.com", "ex-ample.com", "-ex.com", "ex-.com", "ex..com", "example", "a.b.c"]
    domain += ["EXAMPLE.com", "ex_ample.com", "bücher.example", "x" * 250 + ".com", "e.c-"]
    for left in local:
        for right in domain:
            email = f"{left}@{right}"
            assert addresses.is_valid(email) == (addresses.problem(email) is None), email
    for email in ["", "@", "a@", "@b.com", "a@@b.com", "a@b@c.com", "a@b.com."]:
        assert addresses.is_valid(email) == (addresses.problem(email) is None), email
