"""A local SMTP sink (aiosmtpd) on loopback for rehearsals, demos, tests and benchmarks.

``with smtp_sink() as sink:`` runs the server on an ephemeral 127.0.0.1 port in a background
thread; ``sink.host``/``sink.port`` say where, ``sink.messages`` holds what arrived. ``replies``
makes chosen recipients answer like a real server: ``{"a@x": "550 5.1.1 no such user"}`` always,
``{"a@x": ["421 4.7.0 try later"]}`` once (then accepted). STARTTLS or implicit TLS with a given
certificate, and AUTH with one username/password, are there to test the client's side.

``save_to`` writes each accepted message to that directory as ``NNNNNN.eml`` (complete files
only), so that what arrived outlives the process that sent it and can be read back by another.

``python -m warmup.email.sink [PORT] [--save-to DIR] [--delay SECONDS]`` runs one in the
foreground, printing its port and a count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def parsed(self) -> EmailMessage:
        message = BytesParser(policy=default_policy).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class Sink:
    host: str
    port: int = 0
    keep: bool = True
    replies: dict[str, str | list[str]] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    count: int = 0
    per_recipient: Counter[str] = field(default_factory=Counter)
    logins: int = 0
    connections: int = 0
    # Seconds between taking a message and answering 250: widens the window in which a
    # client cannot know whether its message arrived (tests of crash recovery).
    data_delay: float = 0.0
    save_to: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reply_for(self, address: str) -> str | None:
        with self._lock:
            reply = self.replies.get(address.lower())
            if isinstance(reply, list):
                if not reply:
                    return None
                return reply.pop(0)
            return reply

    def accept(self, envelope: Envelope) -> None:
        data = envelope.original_content or b""
        record = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data)
        with self._lock:
            self.count += 1
            number = self.count
            self.per_recipient.update(a.lower() for a in record.rcpt_tos)
            if self.keep:
                self.messages.append(record)
        if self.save_to is not None:
            save_message(self.save_to, number, data)

    def recipients(self) -> list[str]:
        with self._lock:
            return [a for m in self.messages for a in m.rcpt_tos]


def save_message(folder: Path, number: int, data: bytes) -> Path:
    """Write one message as ``folder/NNNNNN.eml``; the name appears only once it is complete."""
    path = folder / f"{number:06d}.eml"
    partial = folder / f".{number:06d}.eml.part"
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def saved_messages(folder: Path) -> list[Received]:
    """The messages a sink saved in ``folder``, in arrival order (envelope fields empty)."""
    return [Received("", (), path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.sink.reply_for(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sink.accept(envelope)
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        return "250 2.0.0 accepted"


def _authenticator(username: str, password: str, sink: Sink) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            sink.logins += 1
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_sink(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: Literal["none", "starttls", "implicit"] = "none",
    tls_context: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
    keep: bool = True,
    replies: dict[str, str | list[str]] | None = None,
    save_to: Path | None = None,
) -> Iterator[Sink]:
    """Run an SMTP sink in a thread for the duration of the block."""
    if tls != "none" and tls_context is None:
        raise ValueError("a TLS sink needs tls_context (a server context with a certificate)")
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
    sink = Sink(
        host=host,
        keep=keep,
        replies={k.lower(): v for k, v in (replies or {}).items()},
        save_to=save_to,
    )
    loop = asyncio.new_event_loop()
    handler = _Handler(sink)

    def factory() -> SMTP:
        sink.connections += 1
        return SMTP(
            handler,
            hostname="warmup-sink",
            loop=loop,
            tls_context=tls_context if tls == "starttls" else None,
            authenticator=_authenticator(*auth, sink) if auth else None,
            # aiosmtpd insists on STARTTLS before a required AUTH; with implicit TLS
            # (already encrypted) or a plain loopback sink AUTH is offered, not required.
            auth_required=auth is not None and tls == "starttls",
            auth_require_tls=tls == "starttls",
        )

    server = loop.run_until_complete(
        loop.create_server(factory, host, port, ssl=tls_context if tls == "implicit" else None)
    )
    sink.port = int(server.sockets[0].getsockname()[1])
    thread = threading.Thread(target=loop.run_forever, name="smtp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def main(argv: list[str] | None = None) -> None:
    """Foreground sink: prints ``PORT`` on the first line, then the count on each ``count``
    line read from stdin; exits at end of input."""
    parser = argparse.ArgumentParser(prog="python -m warmup.email.sink")
    parser.add_argument("port", nargs="?", type=int, default=0, help="0 = any free port")
    parser.add_argument(
        "--save-to", type=Path, metavar="DIR", help="write each message to DIR/NNNNNN.eml"
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait between taking a message and answering 250",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with smtp_sink(port=args.port, keep=False, save_to=args.save_to) as sink:
        sink.data_delay = args.delay
        print(sink.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(sink.count, flush=True)


if __name__ == "__main__":
    main()
