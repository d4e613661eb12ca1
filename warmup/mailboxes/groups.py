"""Mailbox provider groups: which receiving provider (Gmail, Microsoft, Yahoo, Apple…) judges
mail to an address, from its domain and, for company domains, from the domain's MX hosts.

A group matches a domain exactly (``gmail.com``); by a trailing wildcard standing for a public
suffix (``yahoo.*`` matches yahoo.fr and yahoo.co.uk, registrable consumer domains, but not
yahoo.acme.com nor a made-up yahoo.evil: the ICANN part of the Public Suffix List decides); by a
leading wildcard standing for any names under a suffix (``*.cz`` matches seznam.cz and
mail.firma.cz); or through an MX host ending in one of its suffixes (``aspmx.l.google.com``
ends in ``google.com``). A plan's own groups are tried before
the built-in ones; whatever matches nothing is ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

OTHER = "other"


@cache
def _suffixes() -> PublicSuffixList:
    # loaded on the first `NAME.*` rule checked (parsing the list costs about 0.1 s); ICANN
    # suffixes only (no github.io-style private ones); an unknown TLD is no suffix
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False)


def is_public_suffix(name: str) -> bool:
    return bool(name) and bool(_suffixes().is_public(name))


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with a group's domain pattern, or None: ``NAME.*``, ``*.SUFFIX`` or an
    exact domain, lower-case labels without other wildcards."""
    if pattern.endswith(".*"):
        stem = pattern[:-2]
    elif pattern.startswith("*."):
        stem = pattern[2:]
    else:
        stem = pattern
    labels = stem.split(".")
    if "*" in stem or not all(labels) or any(" " in label for label in labels):
        return (
            f"{pattern!r} is not a domain pattern — write a domain (seznam.cz), NAME.* for "
            "NAME under any public suffix (yahoo.* : yahoo.fr, yahoo.co.uk) or *.SUFFIX for "
            "every domain under SUFFIX (*.cz)"
        )
    return None


@dataclass(frozen=True)
class Group:
    name: str
    domains: tuple[str, ...] = ()
    mx_suffixes: tuple[str, ...] = ()

    def has_domain(self, domain: str) -> bool:
        for pattern in self.domains:
            if pattern.endswith(".*"):
                stem = pattern[:-1]
                if domain.startswith(stem) and is_public_suffix(domain[len(stem) :]):
                    return True
            elif pattern.startswith("*."):
                if domain.endswith(pattern[1:]):
                    return True
            elif domain == pattern:
                return True
        return False

    def has_mx(self, hosts: Iterable[str]) -> bool:
        return any(
            host == suffix or host.endswith("." + suffix)
            for host in hosts
            for suffix in self.mx_suffixes
        )


BUILTIN: tuple[Group, ...] = (
    Group("gmail", ("gmail.com", "googlemail.com"), ("google.com", "googlemail.com")),
    Group(
        "microsoft",
        ("outlook.*", "hotmail.*", "live.*", "msn.com", "windowslive.com", "passport.com"),
        ("protection.outlook.com", "outlook.com", "hotmail.com"),
    ),
    Group(
        "yahoo",
        ("yahoo.*", "ymail.com", "rocketmail.com", "aol.com", "aim.com", "aol.co.uk"),
        ("yahoodns.net",),
    ),
    Group("apple", ("icloud.com", "me.com", "mac.com"), ("icloud.com",)),
)
BUILTIN_NAMES = (*(g.name for g in BUILTIN), OTHER)


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower().rstrip(".")


class Classifier:
    """Domain → group, from the groups' domain rules and the known MX hosts of domains.

    ``mx`` maps a domain to its MX hosts as resolved (an empty tuple: resolved, none found);
    a domain missing from it has not been resolved and goes to ``other``."""

    def __init__(self, groups: Sequence[Group], mx: Mapping[str, Sequence[str]]) -> None:
        self.groups = tuple(groups)
        self.mx = mx
        self._memo: dict[str, str] = {}

    def by_domain_rule(self, domain: str) -> str | None:
        for group in self.groups:
            if group.has_domain(domain):
                return group.name
        return None

    def group_of_domain(self, domain: str) -> str:
        found = self._memo.get(domain)
        if found is None:
            found = self.by_domain_rule(domain) or self._by_mx(domain)
            self._memo[domain] = found
        return found

    def group_of(self, email: str | None) -> str:
        return OTHER if email is None else self.group_of_domain(domain_of(email))

    def _by_mx(self, domain: str) -> str:
        hosts = [h.lower().rstrip(".") for h in self.mx.get(domain, ())]
        for group in self.groups:
            if hosts and group.has_mx(hosts):
                return group.name
        return OTHER


def plan_groups(custom: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> list[Group]:
    """A plan's own groups (name → (domains, MX suffixes)) first, then the built-in ones; a plan
    group named like a built-in one replaces it."""
    own = [
        Group(name, tuple(d.lower() for d in domains), tuple(m.lower() for m in mx))
        for name, (domains, mx) in custom.items()
    ]
    return own + [g for g in BUILTIN if g.name not in custom]
