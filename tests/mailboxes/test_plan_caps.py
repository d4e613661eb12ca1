"""`schedule.mailbox_caps` and `mailboxes:` in a plan: valid shapes load; mistakes are located
(file:line:col) and say what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mailboxes.mailbox_helpers import plan_text
from warmup.errors import PlanError
from warmup.plan import load_plan


def _issues(path: Path) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return [issue.render() for issue in caught.value.issues]


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_share_a_number_a_ramp_and_no_cap_load(tmp_path: Path) -> None:
    caps = (
        '    gmail: "40%"\n    microsoft: 500\n'
        f"    yahoo: [{', '.join(['null'] * 13 + ['25.5%'])}]\n    seznam: [20]\n"
    )
    path = plan_text(
        tmp_path,
        caps,
        mailboxes="mailboxes:\n  nameservers: [127.0.0.1:5353]\n  groups:\n"
        "    seznam: {domains: [seznam.cz, email.cz], mx: [seznam.cz]}\n",
        volumes={},
    )
    schedule = load_plan(path).plan.schedule
    assert schedule.mailbox_cap("gmail", 3) == "40%"
    assert schedule.mailbox_cap("microsoft", 14) == 500
    assert schedule.mailbox_cap("yahoo", 1) is None
    assert schedule.mailbox_cap("yahoo", 14) == "25.5%"
    assert schedule.mailbox_cap("seznam", 7) == 20
    assert schedule.mailbox_cap("apple", 1) is None


def test_a_bad_cap_is_located_at_its_value(tmp_path: Path) -> None:
    path = plan_text(
        tmp_path,
        '    gmail: [10, "140%", 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]\n',
        volumes={},
    )
    (issue,) = _issues(path)
    assert issue.startswith(f"{path}:{_line(path, '140%')}:")
    assert "'140%' is not a mailbox cap" in issue
    assert 'like "40%"' in issue


def test_a_from_to_ramp_is_spread_evenly_over_the_days(tmp_path: Path) -> None:
    path = plan_text(
        tmp_path,
        '    gmail: {from: "2%", to: "41%"}\n    microsoft: {from: 100, to: 1400}\n',
        volumes={},
    )
    schedule = load_plan(path).plan.schedule
    assert [schedule.mailbox_cap("gmail", d) for d in (1, 2, 7, 14)] == ["2%", "5%", "20%", "41%"]
    assert [schedule.mailbox_cap("microsoft", d) for d in (1, 2, 14)] == [100, 200, 1400]


@pytest.mark.parametrize(
    "ramp, says",
    [
        ('{from: "2%", to: "140%"}', "'140%' is not a mailbox cap"),
        ('{from: 2, to: "40%"}', "two numbers or two shares, not one of each"),
        ('{from: "2%"}', "exactly the keys `from` and `to` (found 'from')"),
        ("{from: null, to: 50}", "not from or to null"),
    ],
)
def test_a_bad_ramp_is_located_at_its_group(tmp_path: Path, ramp: str, says: str) -> None:
    path = plan_text(tmp_path, f"    gmail: {ramp}\n", volumes={})
    (issue,) = _issues(path)
    assert issue.startswith(f"{path}:{_line(path, 'gmail: {')}:")
    assert says in issue and "{from:" in issue


def test_a_ramp_of_the_wrong_length_says_how_many(tmp_path: Path) -> None:
    path = plan_text(tmp_path, "    gmail: [10, 20, 30]\n", volumes={})
    (issue,) = _issues(path)
    assert issue.startswith(f"{path}:{_line(path, 'gmail: [10')}:")
    assert "3 caps for 14 days" in issue and "exactly 14" in issue


def test_an_unknown_group_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = plan_text(tmp_path, "    gmial: 10\n", volumes={})
    issues = _issues(path)
    assert any(
        i.startswith(f"{path}:{_line(path, 'gmial')}:") and "did you mean 'gmail'" in i
        for i in issues
    )


def test_bad_group_names_and_name_servers_are_located(tmp_path: Path) -> None:
    path = plan_text(
        tmp_path,
        "    gmail: 10\n",
        mailboxes="mailboxes:\n  nameservers: [127.0.0.1:99999]\n  groups:\n    Other: {}\n",
        volumes={},
    )
    issues = _issues(path)
    assert any(
        i.startswith(f"{path}:{_line(path, '99999')}:") and "not a name server" in i for i in issues
    )
    assert any(
        i.startswith(f"{path}:{_line(path, 'Other:')}:") and "cannot name a group" in i
        for i in issues
    )


@pytest.mark.parametrize("server", ["ns1.example.com", "300.1.1.1", "[::1]:99999", "[::1"])
def test_a_name_server_that_is_no_ip_address_is_located(tmp_path: Path, server: str) -> None:
    path = plan_text(
        tmp_path,
        "    gmail: 10\n",
        mailboxes=f'mailboxes:\n  nameservers: ["{server}"]\n',
        volumes={},
    )
    (issue,) = _issues(path)
    assert issue.startswith(f"{path}:{_line(path, server)}:")
    assert "is not a name server" in issue and "[::1]:5353" in issue


def test_ipv6_name_servers_load_with_and_without_a_port(tmp_path: Path) -> None:
    from warmup.mailboxes.mx import make_resolver

    path = plan_text(
        tmp_path,
        "    gmail: 10\n",
        mailboxes='mailboxes:\n  nameservers: ["[::1]:5353", "127.0.0.1:5353"]\n',
        volumes={},
    )
    settings = load_plan(path).plan.mailboxes
    assert settings is not None
    resolver = make_resolver(settings.nameservers, 1.0)
    assert resolver.nameservers == ["::1", "127.0.0.1"] and resolver.port == 5353


@pytest.mark.parametrize("pattern", ["ya*hoo.com", "*", "*.*", "seznam..cz", "*.cz.*"])
def test_a_group_domain_pattern_that_cannot_match_is_located(tmp_path: Path, pattern: str) -> None:
    path = plan_text(
        tmp_path,
        "    seznam: 10\n",
        mailboxes=f'mailboxes:\n  groups:\n    seznam:\n      domains: ["{pattern}"]\n',
        volumes={},
    )
    (issue,) = _issues(path)
    assert issue.startswith(f"{path}:{_line(path, 'domains:')}:")
    assert "is not a domain pattern" in issue and "*.SUFFIX" in issue


def test_the_valid_plan_summary_lists_the_caps(tmp_path: Path) -> None:
    from warmup.plan.summary import summarize

    ramp = ", ".join(["null"] * 13 + ["25"])
    path = plan_text(
        tmp_path,
        f'    gmail: "40%"\n    microsoft: [{ramp}]\n',
        mailboxes="mailboxes:\n  nameservers: [127.0.0.1:5353]\n",
        volumes={},
    )
    text = summarize(load_plan(path))
    assert f"caps: gmail 40%; microsoft {' '.join(['-'] * 13 + ['25'])}" in text
    assert "MX via 127.0.0.1:5353" in text
