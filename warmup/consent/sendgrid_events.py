"""SendGrid's signed Event Webhook: signature and timestamp checks, SendGrid's event shapes.

SendGrid signs each POST with ECDSA P-256 over SHA-256 of the ``X-Twilio-Email-Event-Webhook-
Timestamp`` header's text followed by the raw body, base64 DER in ``X-Twilio-Email-Event-
Webhook-Signature``; the verification key (base64 DER) is the one SendGrid shows when signing
is turned on, read from the variable the plan names. A timestamp further than the plan's
tolerance from now is refused, so a captured request cannot be replayed later.

The body is a JSON array of events. ``delivered`` → delivered; ``bounce`` → hard_bounced, or
soft_bounced when its ``type`` is ``blocked``; ``spamreport`` → complained; ``unsubscribe`` and
``group_unsubscribe`` → unsubscribed; ``deferred`` (the receiving server said "later"; SendGrid
keeps trying) → deferred, which counts toward its mailbox group's deferrals (group holds) and
nothing else. ``processed``, ``dropped``, opens and clicks are acknowledged and not stored.
Each event is stored once by its ``sg_event_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from typing import Any

from warmup.consent.webhooks import BadWebhook
from warmup.events import PROVIDER_EVENT_TYPES, IncomingEvent, check_event

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_TYPES = {
    "delivered": "delivered",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "deferred": "deferred",
}


def load_public_key(text: str) -> Any:
    """SendGrid's verification key (base64 DER SubjectPublicKeyInfo, or PEM) → an EC key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("not a base64 DER or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(
    key: Any,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance: int,
    now: float | None = None,
) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature or not timestamp:
        raise BadWebhook(401, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    # ASCII digits only (str.isdigit takes "²", which int() refuses), and few enough to be a
    # time: a 400-digit number overflows the comparison with time.time().
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise BadWebhook(401, f"{TIMESTAMP_HEADER} is not a Unix time")
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        raise BadWebhook(401, f"{TIMESTAMP_HEADER} is more than {tolerance} s from now")
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BadWebhook(401, f"{SIGNATURE_HEADER} does not match the body") from None


def parse(body: bytes) -> list[IncomingEvent]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadWebhook(400, "body is not JSON") from None
    if not isinstance(document, list):
        raise BadWebhook(400, "body is not a JSON array of SendGrid events")
    events: list[IncomingEvent] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise BadWebhook(400, f"[{index}] is not an event object")
        name = item.get("event")
        kind = _TYPES.get(str(name))
        if name == "bounce":
            kind = "soft_bounced" if item.get("type") == "blocked" else "hard_bounced"
        if kind is None:
            continue
        stamp = item.get("timestamp")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise BadWebhook(400, f"[{index}].timestamp is not a Unix time")
        try:
            occurred = datetime.fromtimestamp(stamp, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise BadWebhook(400, f"[{index}].timestamp is not a Unix time") from None
        event_id = str(item.get("sg_event_id") or "")
        email = str(item.get("email") or "")
        problem = check_event(event_id, kind, email, occurred, types=PROVIDER_EVENT_TYPES)
        if problem:
            raise BadWebhook(400, f"[{index}]: {problem}")
        data = {
            k: item[k]
            for k in (
                "sg_message_id",
                "reason",
                "status",
                "type",
                "response",
                "attempt",
                "warmup_key",
            )
            if k in item
        }
        events.append(IncomingEvent(event_id, kind, email, occurred, data))
    return events
