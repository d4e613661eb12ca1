"""A small authoritative DNS server on loopback UDP for tests and rehearsals: MX records of
company domains, NXDOMAIN for the rest, and domains that never answer (a lookup that times
out). Messages are parsed and built by dnspython; every query is counted per domain."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class DnsZone:
    # domain → [(preference, exchange host)]
    mx: Mapping[str, Sequence[tuple[int, str]]]
    # domains whose queries get no answer at all
    silent: frozenset[str] = frozenset()
    queries: Counter[str] = field(default_factory=Counter)


def answer(zone: DnsZone, wire: bytes) -> bytes | None:
    """The response to one query message (None: stay silent)."""
    query = dns.message.from_wire(wire)
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    zone.queries[name] += 1
    if name in zone.silent:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    records = zone.mx.get(name)
    if records is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.MX and records:
        response.answer.append(
            dns.rrset.from_text_list(
                question.name,
                300,
                dns.rdataclass.IN,
                dns.rdatatype.MX,
                [f"{pref} {host.rstrip('.')}." for pref, host in records],
            )
        )
    return response.to_wire()


@dataclass
class DnsServer:
    zone: DnsZone
    host: str
    port: int

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"


@contextmanager
def serve_dns(zone: DnsZone, host: str = "127.0.0.1") -> Iterator[DnsServer]:
    """Serve ``zone`` on a free UDP port of ``host`` until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = answer(zone, wire)
            except dns.exception.DNSException:
                continue  # not a DNS query: ignore it, as a server would
            if reply is not None:
                sock.sendto(reply, peer)

    thread = threading.Thread(target=loop, name="warmup-dns", daemon=True)
    thread.start()
    try:
        yield DnsServer(zone, host, sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
