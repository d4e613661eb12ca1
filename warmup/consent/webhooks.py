"""The new provider's event webhooks: signature check and the documented JSON shape.

``POST /webhooks/events`` with header ``X-Warmup-Signature: sha256=<hex>``, the HMAC-SHA256 of the
raw request body keyed with the secret in the plan's ``events.webhook_secret_env`` variable, and
a body like::

    {"events": [
        {"id": "evt-123", "type": "hard_bounced", "email": "ann@example.com",
         "occurred_at": "2026-12-01T10:04:11Z", "data": {"smtp_code": 550}}
    ]}

``id`` is the provider's event id (an event is stored once per id: a retry or replay changes
nothing); ``type`` is one of delivered, hard_bounced, soft_bounced, complained, unsubscribed;
``data`` is optional and kept as sent. A batch holds 1 to 1000 events and is checked whole
before anything is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warmup.events import IncomingEvent, check_event

SIGNATURE_HEADER = "X-Warmup-Signature"
MAX_EVENTS = 1000


class BadWebhook(Exception):
    """A webhook request the service rejects; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body`` (what a provider, or a test, sends)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    if not header:
        raise BadWebhook(401, f"missing {SIGNATURE_HEADER} header (sha256=<hex HMAC of the body>)")
    if not hmac.compare_digest(header.strip().encode(), sign(secret, body).encode()):
        raise BadWebhook(401, f"{SIGNATURE_HEADER} does not match the body")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    type: Literal["delivered", "hard_bounced", "soft_bounced", "complained", "unsubscribed"]
    email: str = Field(min_length=3, max_length=320)
    occurred_at: str
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: object) -> object:
        # Providers often number their events; an int id is the same id as its text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[_Event] = Field(min_length=1, max_length=MAX_EVENTS)


# An event's `data` is a small object; deeper nesting is refused before anything reads it
# recursively (validation, storing, reading it back).
MAX_DEPTH = 32


def _depth(document: Any) -> int:
    """How deeply lists and objects nest, counted without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                items = value.values() if isinstance(value, dict) else value
                stack.extend((item, level + 1) for item in items)
    return deepest


def parse_events(body: bytes) -> list[IncomingEvent]:
    """The events of a webhook body; BadWebhook(400) for anything not in the documented shape."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadWebhook(400, f"body is not JSON: {exc}") from None
    except RecursionError:
        raise BadWebhook(400, f"body nests JSON deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
        raise BadWebhook(400, f"body is not usable JSON: {exc}") from None
    if _depth(document) > MAX_DEPTH:
        raise BadWebhook(400, f"body nests JSON deeper than {MAX_DEPTH} levels")
    try:
        batch = _Batch.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadWebhook(
            400,
            f"{where}: {first['msg']} ({exc.error_count()} problem(s); "
            'expected {"events": [{"id", "type", "email", '
            '"occurred_at", "data"?}]})',
        ) from None
    events: list[IncomingEvent] = []
    for index, event in enumerate(batch.events):
        problem = check_event(event.id, event.type, event.email, event.occurred_at)
        if problem:
            raise BadWebhook(400, f"events.{index}: {problem}")
        events.append(
            IncomingEvent(event.id, event.type, event.email, event.occurred_at, event.data or None)
        )
    return events
