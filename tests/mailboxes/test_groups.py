"""Mailbox provider groups from the address's domain and, for company domains, MX hosts."""

from __future__ import annotations

import pytest

from warmup.mailboxes.groups import OTHER, Classifier, plan_groups


@pytest.mark.parametrize(
    ("email", "group"),
    [
        ("a@gmail.com", "gmail"),
        ("a@GoogleMail.com", "gmail"),
        ("a@outlook.com", "microsoft"),
        ("a@hotmail.co.uk", "microsoft"),
        ("a@live.fr", "microsoft"),
        ("a@msn.com", "microsoft"),
        ("a@yahoo.com", "yahoo"),
        ("a@yahoo.co.jp", "yahoo"),
        ("a@ymail.com", "yahoo"),
        ("a@aol.com", "yahoo"),
        ("a@icloud.com", "apple"),
        ("a@me.com", "apple"),
        ("a@mac.com", "apple"),
        ("a@example.com", OTHER),
        # a wildcard covers a country ending, not any domain that starts alike
        ("a@yahoo.evil.example.com", OTHER),
        ("a@yahooo.com", OTHER),
        ("a@gmail.com.", "gmail"),
        # `NAME.*` is NAME under a public suffix: a registrable consumer domain, nothing else
        ("a@outlook.de", "microsoft"),
        ("a@outlook.fr", "microsoft"),
        ("a@live.com", "microsoft"),
        ("a@live.acme.io", OTHER),
        ("a@live.nation.com", OTHER),
        ("a@hotmail.evil", OTHER),
        ("a@yahoo.acme.com", OTHER),
        ("a@yahoo.github.io", OTHER),
    ],
)
def test_consumer_domains_by_rule(email: str, group: str) -> None:
    assert Classifier(plan_groups({}), {}).group_of(email) == group


def test_company_domains_by_mx_host() -> None:
    mx = {
        "acme.example": ["aspmx.l.google.com", "alt1.aspmx.l.google.com"],
        "globex.example": ["globex-example.mail.protection.outlook.com"],
        "initech.example": ["mta5.am0.yahoodns.net"],
        "hooli.example": ["mx01.mail.icloud.com"],
        "own.example": ["mx.own.example"],
        # a host that only looks like Google's must not count as Google
        "fake.example": ["mx.notgoogle.com"],
        "none.example": [],
    }
    sort = Classifier(plan_groups({}), mx)
    found = {domain: sort.group_of(f"x@{domain}") for domain in mx}
    assert found == {
        "acme.example": "gmail",
        "globex.example": "microsoft",
        "initech.example": "yahoo",
        "hooli.example": "apple",
        "own.example": OTHER,
        "fake.example": OTHER,
        "none.example": OTHER,
    }
    # never resolved: other
    assert sort.group_of("x@unresolved.example") == OTHER


def test_plan_groups_come_first_and_can_replace_a_builtin() -> None:
    groups = plan_groups(
        {"seznam": (["seznam.cz", "email.cz"], ["seznam.cz"]), "apple": (["icloud.com"], [])}
    )
    sort = Classifier(groups, {"firma.cz": ["mx1.seznam.cz"], "hooli.example": ["mx.icloud.com"]})
    assert sort.group_of("a@email.cz") == "seznam"
    assert sort.group_of("a@firma.cz") == "seznam"
    assert sort.group_of("a@icloud.com") == "apple"
    # the plan's apple has no me.com and no MX suffix
    assert sort.group_of("a@me.com") == OTHER
    assert sort.group_of("a@hooli.example") == OTHER


def test_a_leading_wildcard_matches_every_domain_under_its_suffix() -> None:
    sort = Classifier(plan_groups({"czech": (["*.cz"], [])}), {})
    assert sort.group_of("a@seznam.cz") == "czech"
    assert sort.group_of("a@mail.firma.cz") == "czech"
    assert sort.group_of("a@cz") == OTHER
    assert sort.group_of("a@acme.cz.example") == OTHER
