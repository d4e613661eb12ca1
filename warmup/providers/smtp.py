"""SMTP delivery: one reused connection per session, STARTTLS or implicit TLS, AUTH.

Replies map onto the delivery errors: 4xx → TransientDeliveryError (retry later), 5xx to a
recipient or to the message → PermanentDeliveryError (a hard bounce), a refused sender or failed
login or a server that cannot be reached → DeliveryError (the whole run stops: every message
would fail the same way). A connection
lost after the message body went out → UncertainDeliveryError: the server may have accepted it.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from typing import Literal

from warmup.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from warmup.providers.base import Commit, OutgoingEmail

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    verify_tls: bool = True
    max_connections: int = 4
    rate_per_second: float | None = None
    # Tests and private relays with their own CA pass a context; None builds a default one.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    local_hostname: str = field(default_factory=socket.gethostname)


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:300]


def _raise_for(code: int, reply: bytes | str, recipient: str, stage: str) -> None:
    message = f"{stage}: {code} {_reply_text(reply)}"
    if 400 <= code < 500:
        raise TransientDeliveryError(message, code=code, recipient=recipient)
    if 500 <= code < 600:
        raise PermanentDeliveryError(message, code=code, recipient=recipient)
    raise TransientDeliveryError(
        f"{stage}: unexpected reply {code} {_reply_text(reply)}", code=code, recipient=recipient
    )


class SmtpProvider:
    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.max_connections = settings.max_connections
        self.rate_per_second = settings.rate_per_second

    def tls_context(self) -> ssl.SSLContext:
        if self.settings.ssl_context is not None:
            return self.settings.ssl_context
        context = ssl.create_default_context()
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def probe(self) -> str:
        """Connect as a send does (TLS and AUTH as configured), then QUIT; says what held.
        Raises DeliveryError as a send would."""
        smtp = SmtpSession(self)._connect()
        try:
            s = self.settings
            tls = {"starttls": "STARTTLS", "implicit": "implicit TLS", "none": "no TLS"}[s.tls]
            auth = "AUTH accepted" if s.username else "no AUTH configured"
            return f"EHLO answered, {tls}, {auth}"
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()

    def open_session(self) -> SmtpSession:
        return SmtpSession(self)


class SmtpSession:
    """One SMTP connection, opened on first use and reopened after it breaks."""

    def __init__(self, provider: SmtpProvider) -> None:
        self._provider = provider
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self._provider.settings
        where = f"{s.host}:{s.port}"
        try:
            if s.tls == "implicit":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=s.local_hostname,
                    timeout=s.timeout,
                    context=self._provider.tls_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout
                )
            smtp.ehlo()
            if s.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise DeliveryError(
                        f"SMTP server {where} does not offer STARTTLS",
                        hint="set `tls: implicit` (port 465) or, on a "
                        "trusted local relay only, `tls: none`",
                    )
                smtp.starttls(context=self._provider.tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP server {where} refused the login: {exc.smtp_code} "
                f"{_reply_text(exc.smtp_error)}",
                hint="check the username/password environment variables named in the plan",
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with {where} failed: {exc.reason or exc}",
                hint="check the server's certificate, or its CA",
            ) from None
        except smtplib.SMTPResponseException as exc:
            _raise_for(exc.smtp_code, exc.smtp_error, "", f"connecting to {where}")
            raise  # unreachable: _raise_for always raises
        except (OSError, smtplib.SMTPException) as exc:
            # Not a per-message problem: every message would meet it, so the run stops with
            # its rows still pending instead of burning their retries.
            raise DeliveryError(
                f"cannot use the SMTP server {where}: {exc}",
                hint="check the relay is up and the plan's host, port and tls; "
                "rows stay pending, run again to resume",
            ) from None
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def _reset_or_drop(self, code: int) -> None:
        # 421 means the server is closing the channel; anything else leaves it usable.
        if code == 421 or self._smtp is None:
            self._drop()
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        try:
            code, reply = smtp.mail(message.sender)
            if code != 250:
                self._reset_or_drop(code)
                if 500 <= code < 600:
                    raise DeliveryError(
                        f"the SMTP server refused the sender "
                        f"{message.sender}: {code} {_reply_text(reply)}",
                        hint="check sender.from in the plan and the relay's allowed senders",
                    )
                _raise_for(code, reply, message.recipient, "MAIL FROM")
            code, reply = smtp.rcpt(message.recipient)
            if code not in (250, 251):
                self._reset_or_drop(code)
                _raise_for(code, reply, message.recipient, "RCPT TO")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise TransientDeliveryError(
                f"connection lost before DATA: {exc}", recipient=message.recipient
            ) from None
        if not commit():
            self._reset_or_drop(0)
            return False
        try:
            code, reply = smtp.docmd("DATA")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise TransientDeliveryError(
                f"connection lost at DATA: {exc}", recipient=message.recipient
            ) from None
        if code != 354:
            self._reset_or_drop(code)
            _raise_for(code, reply, message.recipient, "DATA")
        body = _LEADING_DOT.sub(b"..", message.data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            smtp.send(body + b".\r\n")
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise UncertainDeliveryError(
                f"connection lost after the message was sent, before the server's answer: {exc}",
                recipient=message.recipient,
            ) from None
        if code != 250:
            self._reset_or_drop(code)
            _raise_for(code, reply, message.recipient, "end of DATA")
        return True

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
