"""The one small interface every email delivery provider implements.

A provider knows its wire protocol, nothing about plans or days. The dispatcher opens up to
``max_connections`` sessions, one per worker thread, and hands each message to ``send`` with a
``commit`` callback. The provider calls ``commit()`` right before the step after which delivery
cannot be taken back (SMTP: after the recipient was accepted, before DATA; an HTTP API: before
the POST). ``commit`` records the message as ``sending`` in the store; when it returns False the
message was taken by someone else or withdrawn, and the provider abandons it.

``send`` returns normally once the provider accepted the message, or raises
TransientDeliveryError (retry later), PermanentDeliveryError (a hard bounce) or
UncertainDeliveryError (the connection died after the hand-over: the outcome is unknown).
An SES, SendGrid or Bloomreach provider adds one module with these two classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from warmup.errors import DeliveryError


@dataclass(frozen=True, slots=True)
class MessageParts:
    """The message before MIME, for JSON APIs that assemble it themselves (SendGrid).
    ``variables`` are this recipient's own strings (unsubscribe URL, names, address): an API
    that batches recipients may lift them out of the shared body as substitutions."""

    sender: str
    reply_to: str | None
    recipient_name: str
    subject: str
    text: str
    html: str
    unsubscribe: str
    variables: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    key: str
    sender: str
    recipient: str
    message_id: str
    data: bytes
    parts: MessageParts | None = None


Commit = Callable[[], bool]


class Session(Protocol):
    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        """Deliver one message; False when ``commit()`` declined it."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class BatchSession(Protocol):
    """A session that hands over many messages per request (an email API's batch call).

    ``commit(messages)`` records them ``sending`` right before the request and returns, in
    order, whether each may still go; ``send_batch`` returns per message True (accepted),
    False (declined by commit) or the DeliveryError that message met, and raises a
    DeliveryError when the whole run must stop."""

    def send_batch(
        self,
        messages: Sequence[OutgoingEmail],
        commit: Callable[[Sequence[OutgoingEmail]], Sequence[bool]],
    ) -> list[bool | DeliveryError]: ...

    def close(self) -> None: ...


class Provider(Protocol):
    name: str

    @property
    def max_connections(self) -> int:
        """Sessions the dispatcher runs at once (an API provider may size it from its rate)."""
        ...

    @property
    def rate_per_second(self) -> float | None:
        """Messages per second at most (an API provider may read it from the account)."""
        ...

    def open_session(self) -> Session: ...
