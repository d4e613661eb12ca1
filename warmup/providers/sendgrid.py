"""SendGrid v3 Mail Send: many recipients per ``POST /v3/mail/send``, one personalization each.

A request carries one body (``content``) for all its personalizations (at most 1,000, the
API's limit); each personalization has its own ``to``, ``subject``, ``headers`` (the
recipient's own ``List-Unsubscribe`` and ``List-Unsubscribe-Post``, so one-click unsubscribe
keeps working), ``substitutions`` and ``custom_args`` (the outbox key, which SendGrid's events
echo back). Messages are grouped by their body with the recipient's own strings (unsubscribe
URL, names, address) lifted out as substitution tags; a message whose body cannot be
rebuilt exactly from its group's body and its substitutions goes in a group of its own, so
what SendGrid assembles is always the body warmup rendered.

Replies: 202 → accepted; 429 → TransientDeliveryError with ``retry_after`` from
``X-RateLimit-Reset``; 5xx → TransientDeliveryError; 413 → the request is split in two and
sent again; a 400 naming personalizations (``personalizations.N…``) rejects those messages
(RejectedDeliveryError) and the others are sent again without them; any other 400, 401 or 403,
or a connection refused → NotSentDeliveryError for the messages not yet answered (their rows go
back to pending and the run stops: every request would fail); a connection lost after the
request went out → UncertainDeliveryError for its messages.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

import httpx

from warmup.errors import (
    DeliveryError,
    NotSentDeliveryError,
    RateLimitedDelivery,
    RejectedDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from warmup.providers.base import Commit, OutgoingEmail

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
_TAG = "[%wu{}%]"
_TAG_MARK = "[%wu"
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)")


# The longest a 429 waits for its X-RateLimit-Reset (SendGrid counts per second or minute).
_MAX_RESET_WAIT = 60.0


@dataclass(frozen=True)
class SendGridSettings:
    api_key: str = field(repr=False)
    base_url: str = "https://api.sendgrid.com"
    max_connections: int = 4
    batch_size: int = MAX_PERSONALIZATIONS
    rate_per_second: float | None = None
    timeout: float = 60.0


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, settings: SendGridSettings) -> None:
        self.settings = settings
        self.max_connections = settings.max_connections
        self.batch_size = min(settings.batch_size, MAX_PERSONALIZATIONS)
        self.requests = 0

    @property
    def rate_per_second(self) -> float | None:
        return self.settings.rate_per_second

    def open_session(self) -> SendGridSession:
        return SendGridSession(self)


@dataclass
class _Lifted:
    message: OutgoingEmail
    text: str
    html: str
    substitutions: dict[str, str]


def lift(message: OutgoingEmail) -> _Lifted:
    """The message's body with its own strings replaced by tags, and the tags' values;
    no tags when the body could not be rebuilt exactly from them."""
    parts = message.parts
    assert parts is not None
    text, body = parts.text, parts.html
    plain = _Lifted(message, text, body, {})
    if _TAG_MARK in text or _TAG_MARK in body:
        return plain
    substitutions: dict[str, str] = {}
    values: list[str] = []
    for value in parts.variables:
        values += [value, html.escape(value)]
    # Longest first, so that a name inside the URL stays part of the URL's tag.
    for value in sorted(dict.fromkeys(values), key=len, reverse=True):
        if _TAG_MARK in value or (value not in text and value not in body):
            continue
        tag = _TAG.format(len(substitutions))
        substitutions[tag] = value
        text, body = text.replace(value, tag), body.replace(value, tag)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
    if size > MAX_SUBSTITUTION_BYTES or not substitutions:
        return plain
    rebuilt_text, rebuilt_html = text, body
    for tag, value in substitutions.items():
        rebuilt_text = rebuilt_text.replace(tag, value)
        rebuilt_html = rebuilt_html.replace(tag, value)
    if rebuilt_text != parts.text or rebuilt_html != parts.html:
        return plain
    return _Lifted(message, text, body, substitutions)


def _address(text: str) -> dict[str, str]:
    name, email = parseaddr(text)
    return {"email": email, "name": name} if name else {"email": email}


def request_body(group: Sequence[_Lifted]) -> dict[str, Any]:
    first = group[0].message.parts
    assert first is not None
    personalizations = []
    for item in group:
        parts = item.message.parts
        assert parts is not None
        to = {"email": item.message.recipient}
        if parts.recipient_name:
            to["name"] = parts.recipient_name
        personalization: dict[str, Any] = {
            "to": [to],
            "subject": parts.subject,
            "headers": {
                "List-Unsubscribe": parts.unsubscribe,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            "custom_args": {"warmup_key": item.message.key},
        }
        if item.substitutions:
            personalization["substitutions"] = item.substitutions
        personalizations.append(personalization)
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": _address(first.sender),
        "subject": first.subject,
        "content": [
            {"type": "text/plain", "value": group[0].text},
            {"type": "text/html", "value": group[0].html},
        ],
    }
    if first.reply_to:
        body["reply_to"] = _address(first.reply_to)
    return body


def _errors(reply: httpx.Response) -> list[dict[str, Any]]:
    try:
        document = reply.json()
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    return [e for e in errors or [] if isinstance(e, dict)]


def _describe(reply: httpx.Response) -> str:
    messages = [str(e.get("message", "")) for e in _errors(reply)]
    return f"SendGrid {reply.status_code}: " + ("; ".join(messages) or reply.text[:200])


class SendGridSession:
    def __init__(self, provider: SendGridProvider) -> None:
        self._provider = provider
        settings = provider.settings
        self._client = httpx.Client(
            base_url=settings.base_url,
            timeout=settings.timeout,
            headers={"Authorization": f"Bearer {settings.api_key}"},
        )

    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        """One message as a batch of one (the Session interface)."""
        result = self.send_batch([message], lambda batch: [commit()])[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_batch(
        self,
        messages: Sequence[OutgoingEmail],
        commit: Callable[[Sequence[OutgoingEmail]], Sequence[bool]],
    ) -> list[bool | DeliveryError]:
        outcome: dict[str, bool | DeliveryError] = {}
        groups: dict[tuple[str, str, str, str], list[_Lifted]] = {}
        for message in messages:
            lifted = lift(message)
            parts = message.parts
            assert parts is not None
            key = (lifted.text, lifted.html, parts.sender, parts.reply_to or "")
            groups.setdefault(key, []).append(lifted)
        waiting_until: float | None = None
        for group in groups.values():
            for start in range(0, len(group), self._provider.batch_size):
                chunk = group[start : start + self._provider.batch_size]
                if waiting_until is not None:
                    # After a 429 every request fails until the reset: do not even try.
                    self._later(chunk, outcome, waiting_until, "waiting for X-RateLimit-Reset")
                    continue
                allowed = commit([item.message for item in chunk])
                live = [item for item, ok in zip(chunk, allowed, strict=True) if ok]
                outcome |= {item.message.key: False for item in chunk if item not in live}
                if live:
                    try:
                        waiting_until = self._post(live, outcome)
                    except NotSentDeliveryError as stop:
                        # Requests already answered keep their outcome; the rest was not sent.
                        return [outcome.get(m.key, stop) for m in messages]
        return [outcome[m.key] for m in messages]

    def _post(self, chunk: list[_Lifted], outcome: dict[str, bool | DeliveryError]) -> float | None:
        """Send one request (splitting or shrinking it as the API asks); the rate-limit reset
        time after a 429, else None."""
        body = json.dumps(request_body(chunk)).encode()
        self._provider.requests += 1
        try:
            reply = self._client.post(
                "/v3/mail/send", content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.ConnectError as exc:
            raise NotSentDeliveryError(
                f"cannot reach SendGrid at {self._provider.settings.base_url}: {exc}",
                hint="check providers.new.base_url and the network; rows stay pending",
            ) from None
        except (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
            for item in chunk:
                outcome[item.message.key] = UncertainDeliveryError(
                    f"the connection to SendGrid was lost after the request was sent: {exc}",
                    recipient=item.message.recipient,
                )
            return None
        except httpx.HTTPError as exc:
            for item in chunk:
                outcome[item.message.key] = TransientDeliveryError(
                    f"SendGrid request failed before it was sent: {exc}",
                    recipient=item.message.recipient,
                )
            return None
        status = reply.status_code
        if status == 202:
            outcome |= {item.message.key: True for item in chunk}
            return None
        if status == 429:
            reset = reply.headers.get("X-RateLimit-Reset", "")
            now = time.time()
            # A Unix time in ASCII digits, at most a minute away (SendGrid's windows are per
            # second or minute): "²" passes isdigit, 400 digits make an infinite wait.
            plausible = reset.isascii() and reset.isdigit() and len(reset) <= 12
            until = min(float(reset), now + _MAX_RESET_WAIT) if plausible else now + 1.0
            self._later(chunk, outcome, until, _describe(reply))
            return until
        if status >= 500:
            for item in chunk:
                outcome[item.message.key] = TransientDeliveryError(_describe(reply), code=status)
            return None
        if status == 413 and len(chunk) > 1:
            half = len(chunk) // 2
            reset = self._post(chunk[:half], outcome)
            if reset is not None:
                self._later(chunk[half:], outcome, reset, "waiting for X-RateLimit-Reset")
                return reset
            return self._post(chunk[half:], outcome)
        if status == 400:
            bad: dict[int, str] = {}
            for error in _errors(reply):
                match = _PERSONALIZATION.match(str(error.get("field") or ""))
                if match is None:
                    bad = {}
                    break
                bad[int(match[1])] = str(error.get("message", ""))
            if bad and all(0 <= index < len(chunk) for index in bad):
                for index, text in bad.items():
                    item = chunk[index]
                    outcome[item.message.key] = RejectedDeliveryError(
                        f"SendGrid 400: {text}", code=400, recipient=item.message.recipient
                    )
                rest = [item for i, item in enumerate(chunk) if i not in bad]
                return self._post(rest, outcome) if rest else None
        raise NotSentDeliveryError(
            _describe(reply),
            code=status,
            hint="check the API key named by providers.new.api_key_env (it needs the "
            "mail.send scope) and that sender.from is a verified SendGrid sender; "
            "rows stay pending, run again to resume",
        )

    @staticmethod
    def _later(
        chunk: Sequence[_Lifted], outcome: dict[str, bool | DeliveryError], until: float, why: str
    ) -> None:
        wait = max(0.0, until - time.time())
        for item in chunk:
            outcome[item.message.key] = RateLimitedDelivery(
                f"SendGrid rate limit: {why}",
                retry_after=wait,
                code=429,
                recipient=item.message.recipient,
            )

    def close(self) -> None:
        self._client.close()
