"""Build the RFC 5322 bytes of one warm-up email, fast.

The stdlib ``email`` package's default policy spends ~1.4 ms per message; the warm-up sends tens
of thousands, so the bytes are assembled here from a skeleton prepared once per run: fixed headers
(From, Reply-To, List-Unsubscribe-Post), then per message To, Subject, Date, Message-ID,
List-Unsubscribe and a multipart/alternative body with quoted-printable text and HTML parts. The
tests parse the result back with the stdlib parser. The boundary starts with ``=_``, which
quoted-printable can never produce, so it cannot collide with a body.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from warmup.email.render import RenderedEmail
from warmup.errors import InvalidInput

# C0 controls (NUL included) and DEL: never in a header, where a NUL or a bare CR/LF could
# end or split it (a customer's name comes from an export).
_CONTROLS = dict.fromkeys([*range(32), 127], " ")


def _clean(text: str) -> str:
    return " ".join(text.translate(_CONTROLS).split())


# A display name longer than this is cut: a name from an export can be any length, and the
# To: line (one unfolded encoded word) must stay within RFC 5322's 998 characters.
MAX_DISPLAY_NAME = 64


def _display_name(name: str) -> str:
    return _clean(_clean(name)[:MAX_DISPLAY_NAME])


def _header_text(name: str, value: str) -> str:
    """A header value as 7-bit text: RFC 2047 for non-ASCII or overlong values."""
    value = _clean(value)
    if value.isascii() and len(value) + len(name) < 900:
        return value
    return Header(value, "utf-8", header_name=name).encode()


def _qp(text: str) -> bytes:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(normalized.encode("utf-8"), istext=True)


def message_id_for(key: str, domain: str) -> str:
    """Message-ID from the outbox key (plan:day:node:customer): the same on every retry, so a
    receiver that saw a resend can tell it is one message."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


@dataclass(frozen=True, slots=True)
class Built:
    message_id: str
    data: bytes


class MessageBuilder:
    """Headers shared by every message of a plan, prepared once."""

    def __init__(self, sender: str, reply_to: str | None, unsubscribe_mailto: str | None) -> None:
        name, address = parseaddr(sender)
        if "@" not in address:
            raise InvalidInput(
                f"sender {sender!r} has no email address",
                hint='write sender.from like "Acme News <news@acme.example>"',
            )
        self.envelope_from = address
        self.domain = address.rsplit("@", 1)[1]
        fixed = [f"From: {formataddr((_clean(name), address), charset='utf-8')}"]
        if reply_to:
            reply_name, reply_address = parseaddr(reply_to)
            fixed.append(f"Reply-To: {formataddr((_clean(reply_name), reply_address), 'utf-8')}")
        fixed += ["MIME-Version: 1.0", "List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
        self._fixed = "\n".join(fixed)
        self._mailto = (
            f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>" if unsubscribe_mailto else None
        )

    def unsubscribe_header(self, unsubscribe_url: str, *, fold: bool = False) -> str:
        """The List-Unsubscribe value: the https URL, then the mailto if the plan has one."""
        value = f"<{unsubscribe_url}>"
        if self._mailto:
            value += (",\n " if fold else ", ") + self._mailto
        return value

    def build(
        self,
        *,
        key: str,
        recipient: str,
        recipient_name: str | None,
        rendered: RenderedEmail,
        unsubscribe_url: str,
        date: datetime | None = None,
    ) -> Built:
        """The message's bytes with CRLF line endings, ready for SMTP DATA or an .eml file."""
        message_id = message_id_for(key, self.domain)
        boundary = "=_" + message_id[1:17]
        to = formataddr((_display_name(recipient_name or ""), recipient), charset="utf-8")
        unsubscribe = self.unsubscribe_header(unsubscribe_url, fold=True)
        head = (
            f"{self._fixed}\n"
            f"To: {to}\n"
            f"Subject: {_header_text('Subject', rendered.subject)}\n"
            f"Date: {format_datetime(date or datetime.now(UTC))}\n"
            f"Message-ID: {message_id}\n"
            f"List-Unsubscribe: {unsubscribe}\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\n'
            "\n"
            f"--{boundary}\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
        ).encode("ascii")
        middle = (
            f"\n--{boundary}\n"
            "Content-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
        ).encode("ascii")
        tail = f"\n--{boundary}--\n".encode("ascii")
        data = head + _qp(rendered.text) + middle + _qp(rendered.html) + tail
        return Built(message_id=message_id, data=data.replace(b"\n", b"\r\n"))
