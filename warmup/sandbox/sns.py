"""An SNS-compatible topic for the sandbox: signed HTTP(S) notifications to one subscriber.

Like Amazon SNS: a new HTTP subscription first receives a ``SubscriptionConfirmation`` whose
``SubscribeURL`` (here the sandbox's ``GET /sns?Action=ConfirmSubscription…``) the subscriber
must fetch; notifications wait until then. Until it confirms, the confirmation is sent again
with a growing delay (``confirm_backoff``: first and longest wait), so a sandbox started before
``warmup serve`` still gets confirmed; ``on_unconfirmed`` hears of each attempt. Every message
is signed as SNS signs (SignatureVersion 2: RSA PKCS#1 v1.5 over SHA-256 of the documented
string to sign) with a key whose self-signed certificate the sandbox serves at
``SigningCertURL``. A failed delivery is retried (SNS's HTTP delivery policy, shortened);
``redeliver`` re-sends every message already delivered, as SNS does when it did not see a 2xx
in time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from warmup.sandbox.delivery import Deliveries

# Where a signer's certificate is served: SNS names each certificate by hash, so a restarted
# sandbox (a new key) never reuses the URL of a certificate a subscriber may have kept.
CERT_FOLDER = "/sns/"
_SIGNED_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SIGNED_SUBSCRIPTION = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def string_to_sign(message: dict[str, str]) -> bytes:
    """SNS's string to sign: ``name\\nvalue\\n`` for each signed field present, in order."""
    names = _SIGNED_NOTIFICATION if message["Type"] == "Notification" else _SIGNED_SUBSCRIPTION
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Signer:
    """An RSA key and its self-signed certificate (made once per sandbox)."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.sandbox.invalid")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = cert.public_bytes(serialization.Encoding.PEM)
        digest = hashlib.sha256(self.certificate_pem).hexdigest()[:32]
        self.certificate_path = f"{CERT_FOLDER}SimpleNotificationService-{digest}.pem"

    def sign(self, message: dict[str, str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(string_to_sign(message), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


@dataclass
class Topic:
    """One topic with at most one HTTP subscriber (the plan's ``warmup serve``)."""

    base_url: str
    region: str = "us-east-1"
    account: str = "123456789012"
    name: str = "warmup-ses-events"
    retries: int = 3
    signer: Signer = field(default_factory=Signer)
    endpoint: str | None = None
    confirmed: bool = False
    token: str = ""
    delivered: list[dict[str, str]] = field(default_factory=list)
    failures: int = 0
    # seconds before the first re-sent confirmation, and the most between two
    confirm_backoff: tuple[float, float] = (1.0, 30.0)
    confirm_attempts: int = 0
    # told (attempts so far, notifications held) after each unanswered confirmation
    on_unconfirmed: Callable[[int, int], None] | None = None
    # told (notifications released) once the subscriber confirms
    on_confirmed: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._held: list[dict[str, str]] = []
        self._delivered_ids: set[str] = set()
        self._lock = threading.Lock()
        self._out: Deliveries[dict[str, str]] = Deliveries(self._deliver, "sns")

    @property
    def certificate_url(self) -> str:
        return self.base_url + self.signer.certificate_path

    @property
    def arn(self) -> str:
        return f"arn:aws:sns:{self.region}:{self.account}:{self.name}"

    def _envelope(self, kind: str, body: str, **extra: str) -> dict[str, str]:
        message = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": self.arn,
            "Message": body,
            "Timestamp": _now(),
            "SignatureVersion": "2",
            "SigningCertURL": self.certificate_url,
            **extra,
        }
        message["Signature"] = self.signer.sign(message)
        return message

    def subscribe(self, endpoint: str) -> None:
        """Send the endpoint a SubscriptionConfirmation; notifications wait for its GET."""
        self.endpoint, self.confirmed = endpoint, False
        self.token = secrets.token_hex(32)
        url = (
            f"{self.base_url}/sns?Action=ConfirmSubscription&TopicArn={self.arn}&Token={self.token}"
        )
        confirmation = self._envelope(
            "SubscriptionConfirmation",
            f"You have chosen to subscribe to the topic {self.arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            SubscribeURL=url,
            Token=self.token,
        )
        self.confirm_attempts = 1
        self._put(confirmation)
        threading.Thread(
            target=self._reconfirm, args=(confirmation,), daemon=True, name="sns-confirm"
        ).start()

    def _reconfirm(self, confirmation: dict[str, str]) -> None:
        """Send the confirmation again, each time waiting longer, until it is confirmed."""
        wait, longest = self.confirm_backoff
        while not self._stop.wait(wait):
            with self._lock:
                if self.confirmed or confirmation.get("Token") != self.token:
                    return
                held = len(self._held)
            if self.on_unconfirmed is not None:
                self.on_unconfirmed(self.confirm_attempts, held)
            self.confirm_attempts += 1
            self._put(confirmation)
            wait = min(wait * 2, longest)

    def confirm(self, token: str) -> bool:
        if not self.token or not secrets.compare_digest(token, self.token):
            return False
        with self._lock:
            was, self.confirmed = self.confirmed, True
            held, self._held = self._held, []
        if not was and self.on_confirmed is not None:
            self.on_confirmed(len(held))
        for message in held:
            self._put(message)
        return True

    def publish(self, body: dict[str, Any]) -> None:
        message = self._envelope(
            "Notification",
            json.dumps(body),
            UnsubscribeURL=f"{self.base_url}/sns?Action=Unsubscribe",
        )
        with self._lock:
            if not self.confirmed:
                self._held.append(message)
                return
        self._put(message)

    def redeliver(self) -> None:
        """Send every delivered notification again (SNS retries; replays must change nothing)."""
        for message in list(self.delivered):
            if message["Type"] == "Notification":
                self._put(message)

    def _put(self, message: dict[str, str]) -> None:
        self._out.put(message)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was delivered or given up; False on timeout."""
        return self._out.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._out.close()

    def _deliver(self, client: httpx.Client, message: dict[str, str]) -> None:
        if self.endpoint is None:
            return
        headers = {
            "x-amz-sns-message-type": message["Type"],
            "x-amz-sns-message-id": message["MessageId"],
            "x-amz-sns-topic-arn": message["TopicArn"],
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": "Amazon Simple Notification Service Agent",
        }
        body = json.dumps(message).encode()
        for attempt in range(self.retries + 1):
            try:
                reply = client.post(self.endpoint, content=body, headers=headers)
                if 200 <= reply.status_code < 300:
                    if message["MessageId"] not in self._delivered_ids:
                        self._delivered_ids.add(message["MessageId"])
                        self.delivered.append(message)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(min(1.0, 0.05 * 2**attempt))
        self.failures += 1
