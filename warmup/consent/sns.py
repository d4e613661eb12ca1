"""Amazon SES events through Amazon SNS: signature verification and SES's event shapes.

SNS posts each message as JSON (``Content-Type: text/plain``). Before anything is read,
the message's signature is verified as SNS documents it: the signing certificate is fetched
from ``SigningCertURL`` — which must be ``https://sns.<region>.amazonaws.com/….pem`` — and the
RSA signature (SignatureVersion 1: SHA-1, 2: SHA-256) over the string to sign is checked with
its public key. A ``SubscriptionConfirmation`` that verifies is confirmed by fetching its
``SubscribeURL`` (also an SNS host only). A ``Notification`` carries one SES event, published
by a configuration set (``eventType``) or an identity's notifications (``notificationType``):
Bounce (Permanent → hard_bounced, else soft_bounced), Complaint → complained, Delivery →
delivered, Subscription with ``unsubscribeAll`` → unsubscribed; other types are acknowledged
and ignored.

Event ids are the provider's own: a bounce or complaint's ``feedbackId`` with the recipient (one
notification may name several; without one, the mail's ``messageId``), a delivery's SES
``messageId`` with the recipient — so SNS's retries and replays are stored once. Only for tests
and rehearsals, a plan may trust more URL prefixes (``events.sns.trust_url_prefixes_for_tests``:
the sandbox's own); never by default.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import httpx

from warmup import clock
from warmup.consent.webhooks import BadWebhook
from warmup.events import IncomingEvent, check_event

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_REQUIRED: tuple[str, ...] = ("Type", "MessageId", "TopicArn", "Message", "Timestamp")
_REQUIRED += ("SignatureVersion", "Signature", "SigningCertURL")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


def trusted_url(url: str, prefixes: Sequence[str], *, certificate: bool) -> bool:
    """An SNS host over https (a ``.pem`` path for a certificate), or a prefix a test trusts."""
    if any(url.startswith(prefix) for prefix in prefixes if prefix):
        return True
    try:
        parsed = urlparse(url)
        port = parsed.port  # raises on a port out of range or not a number
    except ValueError:
        return False
    if parsed.scheme != "https" or not _SNS_HOST.match(parsed.hostname or ""):
        return False
    return port in (None, 443) and (not certificate or parsed.path.endswith(".pem"))


def string_to_sign(message: dict[str, Any]) -> bytes:
    names = _NOTIFICATION if message["Type"] == "Notification" else _SUBSCRIPTION
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


class SnsVerifier:
    """Verifies SNS messages; certificates are fetched once per URL and kept."""

    def __init__(
        self,
        trusted_prefixes: Sequence[str] = (),
        topic_arns: Sequence[str] = (),
        fetch: Callable[[str], bytes] | None = None,
    ) -> None:
        self.prefixes = tuple(trusted_prefixes)
        self.topics = frozenset(topic_arns)
        self._fetch = fetch or _get
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def parse(self, body: bytes) -> dict[str, Any]:
        """The message, once its shape, topic, certificate URL and signature check out."""
        try:
            message = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadWebhook(400, "body is not an SNS message (JSON)") from None
        if not isinstance(message, dict):
            raise BadWebhook(400, "body is not an SNS message (a JSON object)")
        missing = [name for name in _REQUIRED if not isinstance(message.get(name), str)]
        if missing:
            raise BadWebhook(400, f"SNS message without {', '.join(missing)}")
        if message["Type"] not in TYPES:
            raise BadWebhook(400, f"unknown SNS message type {message['Type']!r}")
        if message["Type"] != "Notification" and not isinstance(message.get("Token"), str):
            raise BadWebhook(400, "SNS subscription message without Token")
        if self.topics and message["TopicArn"] not in self.topics:
            raise BadWebhook(403, f"topic {message['TopicArn']} is not one the plan accepts")
        self._verify(message)
        return message

    def _verify(self, message: dict[str, Any]) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        url = message["SigningCertURL"]
        if not trusted_url(url, self.prefixes, certificate=True):
            raise BadWebhook(403, f"SigningCertURL {url} is not an Amazon SNS host")
        algorithm: hashes.HashAlgorithm
        if message["SignatureVersion"] == "1":
            algorithm = hashes.SHA1()
        elif message["SignatureVersion"] == "2":
            algorithm = hashes.SHA256()
        else:
            raise BadWebhook(400, f"unknown SignatureVersion {message['SignatureVersion']!r}")
        key = self._key(url)
        if not isinstance(key, rsa.RSAPublicKey):
            raise BadWebhook(403, "the signing certificate does not hold an RSA key")
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
        except (ValueError, InvalidSignature):
            raise BadWebhook(403, "the SNS signature does not match the message") from None

    def _key(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            key = self._keys.get(url)
        if key is not None:
            return key
        try:
            certificate = x509.load_pem_x509_certificate(self._fetch(url))
        except (httpx.HTTPError, ValueError) as exc:
            raise BadWebhook(403, f"cannot use the signing certificate {url}: {exc}") from None
        now = clock.now()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise BadWebhook(403, f"the signing certificate {url} is not valid now")
        key = certificate.public_key()
        with self._lock:
            self._keys[url] = key
        return key

    def confirm(self, message: dict[str, Any]) -> None:
        """Fetch the SubscribeURL of a verified SubscriptionConfirmation."""
        url = str(message.get("SubscribeURL", ""))
        if not trusted_url(url, self.prefixes, certificate=False):
            raise BadWebhook(403, f"SubscribeURL {url} is not an Amazon SNS host")
        try:
            self._fetch(url)
        except httpx.HTTPError as exc:
            raise BadWebhook(502, f"confirming the subscription failed: {exc}") from None


def _get(url: str) -> bytes:
    reply = httpx.get(url, timeout=10, follow_redirects=False)
    reply.raise_for_status()
    return reply.content


def _recipients(items: Any) -> list[str]:
    return [str(item.get("emailAddress", "")) for item in items or [] if isinstance(item, dict)]


def ses_events(message: dict[str, Any]) -> list[IncomingEvent]:
    """The bounce/complaint/delivery/unsubscribe events of one SES notification."""
    try:
        return _ses_events(message)
    except (AttributeError, TypeError):
        # A list or string where SES writes an object: a 400, not a 500 from warmup serve.
        raise BadWebhook(400, "the SES notification does not have SES's shape") from None


def _ses_events(message: dict[str, Any]) -> list[IncomingEvent]:
    try:
        body = json.loads(message["Message"])
    except (TypeError, json.JSONDecodeError):
        raise BadWebhook(400, "the SNS Message is not an SES notification (JSON)") from None
    if not isinstance(body, dict):
        return []
    kind = body.get("eventType") or body.get("notificationType")
    mail = body.get("mail") or {}
    headers = mail.get("commonHeaders") or {}
    base = {
        "sns_message_id": message["MessageId"],
        "ses_message_id": mail.get("messageId"),
        # the Message-ID warmup wrote (derived from the outbox key): the event's exact mail
        "message_id": headers.get("messageId") if isinstance(headers, dict) else None,
    }
    # SES always writes a feedbackId; should one be missing, the mail's own id (else SNS's) keeps
    # two bounces of one address distinct instead of both stored as "None:<email>", the second lost
    fallback_id = f"{mail.get('messageId') or message['MessageId']}:{str(kind).lower()}"
    found: list[tuple[str, str, str, str, dict[str, Any]]] = []
    if kind == "Bounce":
        bounce = body.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        data = {
            **base,
            "bounce_type": bounce.get("bounceType"),
            "bounce_sub_type": bounce.get("bounceSubType"),
        }
        for item in bounce.get("bouncedRecipients") or []:
            email = str(item.get("emailAddress", ""))
            found.append(
                (
                    f"{bounce.get('feedbackId') or fallback_id}:{email}",
                    "hard_bounced" if permanent else "soft_bounced",
                    email,
                    str(bounce.get("timestamp", "")),
                    {**data, "diagnostic": item.get("diagnosticCode")},
                )
            )
    elif kind == "Complaint":
        complaint = body.get("complaint") or {}
        for email in _recipients(complaint.get("complainedRecipients")):
            found.append(
                (
                    f"{complaint.get('feedbackId') or fallback_id}:{email}",
                    "complained",
                    email,
                    str(complaint.get("timestamp", "")),
                    {**base, "feedback_type": complaint.get("complaintFeedbackType")},
                )
            )
    elif kind == "Delivery":
        delivery = body.get("delivery") or {}
        for email in delivery.get("recipients") or []:
            found.append(
                (
                    f"{mail.get('messageId')}:delivery:{email}",
                    "delivered",
                    str(email),
                    str(delivery.get("timestamp", "")),
                    base,
                )
            )
    elif kind == "Subscription":
        change = body.get("subscription") or {}
        if (change.get("newTopicPreferences") or {}).get("unsubscribeAll"):
            for email in mail.get("destination") or []:
                found.append(
                    (
                        f"{mail.get('messageId')}:unsubscribe:{email}",
                        "unsubscribed",
                        str(email),
                        str(change.get("timestamp", "")),
                        base,
                    )
                )
    events = []
    for event_id, event_type, email, occurred_at, data in found:
        problem = check_event(event_id, event_type, email, occurred_at)
        if problem:
            raise BadWebhook(400, f"SES {kind} notification: {problem}")
        events.append(IncomingEvent(event_id, event_type, email, occurred_at, data))
    return events
