"""A plan's name servers: ``ADDRESS`` or ``ADDRESS:PORT`` (IPv6 as ``::1`` or ``[::1]:5353``).

Only IP addresses: dnspython asks the addresses it is given, and a host name would need a
resolver of its own to find the resolver (which is what fails when DNS is broken)."""

from __future__ import annotations

import ipaddress

DEFAULT_PORT = 53


def parse_nameserver(text: str) -> tuple[str, int]:
    """(address, port) of one name server; ValueError saying what to write."""
    server = text.strip()
    host, port = server, ""
    if server.startswith("["):
        host, sep, rest = server[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(_bad(text, "close the brackets: [::1]:5353"))
        port = rest[1:]
        if rest and not port:
            raise ValueError(_bad(text, "a port follows the colon: [::1]:5353"))
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(_bad(text, "an IP address, not a host name")) from None
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(_bad(text, "a port from 1 to 65535"))
    return str(address), int(port) if port else DEFAULT_PORT


def _bad(text: str, what: str) -> str:
    return (
        f"{text!r} is not a name server ({what}) — write an address like 192.0.2.53, "
        "127.0.0.1:5353 or [::1]:5353"
    )
