"""MX lookups of company domains through dnspython, a few at a time.

Each answer is one of: ``ok`` with the MX hosts, ``none`` (the domain does not exist or has no
MX record: a definite answer, kept), or ``failed`` (timeout, refused, no server: tried again on
a later run; meanwhile the domain counts as ``other``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.resolver

from warmup.mailboxes.nameservers import parse_nameserver

log = logging.getLogger("warmup.mailboxes")


@dataclass(frozen=True)
class MxAnswer:
    domain: str
    status: str  # ok | none | failed
    hosts: tuple[str, ...] = ()
    error: str = ""


def make_resolver(nameservers: Sequence[str], timeout: float) -> dns.resolver.Resolver:
    """The system's resolver, or the plan's name servers (see
    :func:`~warmup.mailboxes.nameservers.parse_nameserver`)."""
    if not nameservers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        parsed = [parse_nameserver(server) for server in nameservers]
        addresses = [address for address, _ in parsed]
        ports = {port for _, port in parsed}
        resolver.nameservers = addresses
        # dnspython has one port per resolver: the plan's check keeps them equal
        resolver.port = ports.pop()
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def lookup(resolver: dns.resolver.Resolver, domain: str) -> MxAnswer:
    try:
        answer = resolver.resolve(domain, "MX", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return MxAnswer(domain, "none")
    except (dns.exception.DNSException, OSError) as exc:
        return MxAnswer(domain, "failed", error=type(exc).__name__)
    if answer.rrset is None:
        return MxAnswer(domain, "none")
    # lowest preference first: the host mail is really handed to
    records = sorted(answer.rrset, key=lambda r: (r.preference, str(r.exchange)))
    hosts = tuple(str(r.exchange).lower().rstrip(".") for r in records)
    return MxAnswer(domain, "ok" if hosts else "none", hosts)


def lookup_all(
    domains: Iterable[str], nameservers: Sequence[str], timeout: float, workers: int = 16
) -> list[MxAnswer]:
    """Every domain's MX answer; lookups overlap (each mostly waits on the network)."""
    todo = list(domains)
    if not todo:
        return []
    resolver = make_resolver(nameservers, timeout)
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        answers = list(pool.map(lambda d: lookup(resolver, d), todo))
    failed = sum(a.status == "failed" for a in answers)
    log.info("mx: %s domains looked up, %s failed", len(answers), failed)
    return answers
