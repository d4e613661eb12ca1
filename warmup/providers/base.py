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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    key: str
    sender: str
    recipient: str
    message_id: str
    data: bytes


Commit = Callable[[], bool]


class Session(Protocol):
    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        """Deliver one message; False when ``commit()`` declined it."""
        ...

    def close(self) -> None: ...


class Provider(Protocol):
    name: str
    max_connections: int

    @property
    def rate_per_second(self) -> float | None:
        """Messages per second at most (an API provider may read it from the account)."""
        ...

    def open_session(self) -> Session: ...
