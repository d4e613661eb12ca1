"""MX lookups of company domains through dnspython, a few at a time.

Each answer is one of: ``ok`` with the MX hosts, ``none`` (the domain does not exist or has no
MX record: a definite answer, kept), or ``failed`` (timeout, refused, no server: tried again on
a later run; meanwhile the domain counts as ``other``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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


# Outcomes of a lookup not asked (the domain counts as failed: tried again on the next run).
SERVER_DOWN = "skipped: the name server does not answer"
OUT_OF_TIME = "skipped: the lookups' time budget ran out"
# A "no MX" answer the run does not trust: the probe domain got no MX either.
DOUBTED = "doubted: the resolver finds no MX for the probe domain either"


@dataclass
class _Watch:
    """Stops the lookups early: after ``give_up_after`` timeouts in a row with no answer in
    between the server is taken for down; past the deadline nothing more is asked."""

    give_up_after: int
    deadline: float
    in_a_row: int = 0
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def skip(self) -> str | None:
        if self.down:
            return SERVER_DOWN
        return OUT_OF_TIME if time.monotonic() >= self.deadline else None

    def saw(self, answer: MxAnswer) -> None:
        with self.lock:
            if answer.status == "failed" and "Timeout" in answer.error:
                self.in_a_row += 1
                self.down = self.down or self.in_a_row >= self.give_up_after
            else:
                self.in_a_row = 0


def lookup_all(
    domains: Iterable[str],
    nameservers: Sequence[str],
    timeout: float,
    workers: int = 16,
    *,
    give_up_after: int = 16,
    budget_seconds: float = 120.0,
    probe: str | None = None,
) -> list[MxAnswer]:
    """Every domain's MX answer; lookups overlap (each mostly waits on the network). A server
    that times out ``give_up_after`` times in a row, or a run past ``budget_seconds``, leaves
    the remaining domains ``failed`` without asking (their ``error`` says which).

    When some answers say "no MX" and ``probe`` names a domain that surely has one, the probe
    is asked too: a resolver that finds none for it either (offline, answering NXDOMAIN for
    everything) makes those answers ``failed`` (:data:`DOUBTED`), not a definite ``none``."""
    todo = list(domains)
    if not todo:
        return []
    resolver = make_resolver(nameservers, timeout)
    watch = _Watch(give_up_after, time.monotonic() + budget_seconds)

    def one(domain: str) -> MxAnswer:
        skipped = watch.skip()
        if skipped:
            return MxAnswer(domain, "failed", error=skipped)
        answer = lookup(resolver, domain)
        watch.saw(answer)
        return answer

    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        answers = list(pool.map(one, todo))
    doubt = probe and any(a.status == "none" for a in answers)
    if doubt and lookup(resolver, str(probe)).status != "ok":
        answers = [
            MxAnswer(a.domain, "failed", error=DOUBTED) if a.status == "none" else a
            for a in answers
        ]
    failed = sum(a.status == "failed" for a in answers)
    log.info("mx: %s domains looked up, %s failed", len(answers), failed)
    return answers
