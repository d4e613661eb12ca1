"""An Amazon SES (API v2) compatible endpoint for rehearsals and tests, with its SNS topic.

Served operations, as in AWS's published model (``botocore/data/sesv2/2019-09-27``):
``GET /v2/email/account`` (GetAccount) and ``POST /v2/email/outbound-emails`` (SendEmail).
Each request is checked like SES checks it, in this order: SigV4 signature (403), route (404),
body against the API model (400 BadRequestException), the account's maximum send rate less
what its other senders use (``others_rate``; 429 TooManyRequestsException, which SES sends
without a Retry-After), the 24-hour quota, injected
faults (``faults``: a share of 500s and 429s), then the message: raw MIME with a From header,
lines of at most 1,000 characters, one recipient.

What happens to an accepted message is decided by its recipient, like SES's mailbox simulator
(``bounce@simulator.amazonses.com`` …) and the sandbox's own conventions: a local part starting
``bounce+``, ``soft+``, ``complaint+`` or ``reject+`` bounces, soft-bounces, complains, or is
refused with MessageRejected; ``outcomes`` maps addresses or ``@domain`` to the same words.
Deliveries, bounces and complaints are published to the SNS topic (:mod:`warmup.sandbox.sns`)
in SES's event-publishing format.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from warmup.sandbox.aws import AwsError, SignedRequest, check_shape, service_model, verify_sigv4
from warmup.sandbox.lifespan import run_lifespan
from warmup.sandbox.sns import Topic

SERVICE = "ses"
FAST_SCALE = 100.0
OUTCOMES = ("deliver", "bounce", "soft_bounce", "complaint", "reject")
_PREFIXES = {"bounce+": "bounce", "soft+": "soft_bounce", "complaint+": "complaint"}
_PREFIXES |= {"reject+": "reject"}
_SIMULATOR = {
    "success": "deliver",
    "ooto": "deliver",
    "bounce": "bounce",
    "suppressionlist": "bounce",
    "complaint": "complaint",
}


def new_access_key() -> tuple[str, str]:
    """An access key id and secret in AWS's shapes (AKIA + 16, 40 characters)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "AKIA" + "".join(random.SystemRandom().choice(alphabet) for _ in range(16))
    return key_id, base64.b64encode(random.randbytes(30)).decode()


@dataclass
class SesSandboxConfig:
    region: str = "us-east-1"
    credentials: dict[str, str] = field(default_factory=lambda: dict([new_access_key()]))
    max_send_rate: float = 14.0
    max_24_hour_send: float = 50_000.0
    fast: bool = False
    faults: float = 0.0
    outcomes: dict[str, str] = field(default_factory=dict)
    configuration_sets: tuple[str, ...] = ("warmup",)
    seed: int | None = None
    # Keep each accepted message's bytes (tests); off, only its headers are kept.
    keep_raw: bool = False
    # Seconds between deciding a request and answering it, as a far region's round trip: the
    # message is taken before the wait, so a client killed meanwhile cannot know it went.
    answer_delay: float = 0.0
    # Messages per second other senders of the account use (transactional mail, another
    # tool): SES throttles past what is left, while GetAccount still says MaxSendRate.
    others_rate: float = 0.0

    @property
    def rate(self) -> float:
        return self.max_send_rate * (FAST_SCALE if self.fast else 1.0)


@dataclass(frozen=True)
class Accepted:
    message_id: str
    recipient: str
    headers: dict[str, str]
    raw: bytes | None = None


class _Bucket:
    """The account's maximum send rate: a one-second bucket, refilled continuously."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, max(1.0, rate)
        self.tokens, self.at = self.capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SesSandboxApp:
    """The ASGI app; ``accepted`` lists every message SES would have sent."""

    def __init__(self, config: SesSandboxConfig, base_url: str) -> None:
        self.config, self.base_url = config, base_url
        self.model = service_model("sesv2")
        self.bucket = _Bucket(config.rate - config.others_rate)
        self.topic = Topic(base_url, region=config.region)
        self.accepted: list[Accepted] = []
        self.requests = 0
        # Requests being answered at once, and the most seen (the event loop serves them
        # concurrently; ``handle`` itself runs to completion without yielding).
        self.in_flight = 0
        self.most_in_flight = 0
        self.throttled = 0
        self.rejected = 0
        self.sent_24h = 0
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()

    # --- outcomes -----------------------------------------------------------------------------

    def outcome_for(self, recipient: str) -> str:
        address = recipient.strip().lower()
        local, _, domain = address.partition("@")
        if address in self.config.outcomes:
            return self.config.outcomes[address]
        if "@" + domain in self.config.outcomes:
            return self.config.outcomes["@" + domain]
        if domain == "simulator.amazonses.com":
            return _SIMULATOR.get(local.split("+")[0], "deliver")
        for prefix, outcome in _PREFIXES.items():
            if local.startswith(prefix):
                return outcome
        return "deliver"

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self.topic.close)
            return
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            request = Request(scope, receive)
            body = await request.body()
            try:
                response = self.handle(request, body)
            except AwsError as exc:
                response = Response(
                    json.dumps({"message": exc.message}),
                    status_code=exc.status,
                    media_type="application/json",
                    headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": str(uuid.uuid4())},
                )
            if self.config.answer_delay:
                await asyncio.sleep(self.config.answer_delay)
            await response(scope, receive, send)
        finally:
            self.in_flight -= 1

    def handle(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        if path == self.topic.signer.certificate_path and request.method == "GET":
            return Response(self.topic.signer.certificate_pem, media_type="application/x-pem-file")
        if path == "/sns" and request.method == "GET":
            return self._sns_action(request)
        with self._lock:
            self.requests += 1
        verify_sigv4(
            SignedRequest(
                request.method,
                path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            ),
            self.config.credentials,
            region=self.config.region,
            service=SERVICE,
        )
        if path == "/v2/email/account" and request.method == "GET":
            return self._json(self._account())
        if path == "/v2/email/outbound-emails" and request.method == "POST":
            return self._json(self._send(body))
        raise AwsError(404, "NotFoundException", f"no operation at {request.method} {path}")

    def _json(self, document: dict[str, Any]) -> Response:
        return Response(
            json.dumps(document),
            media_type="application/json",
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _sns_action(self, request: Request) -> Response:
        action = request.query_params.get("Action")
        if action == "ConfirmSubscription" and self.topic.confirm(
            request.query_params.get("Token", "")
        ):
            arn = self.topic.arn + ":" + str(uuid.uuid4())
            return Response(
                "<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
                f"{arn}</SubscriptionArn></ConfirmSubscriptionResult>"
                "</ConfirmSubscriptionResponse>",
                media_type="text/xml",
            )
        raise AwsError(400, "InvalidParameter", "unknown action or token")

    def _account(self) -> dict[str, Any]:
        return {
            "SendQuota": {
                "Max24HourSend": self.config.max_24_hour_send,
                "MaxSendRate": self.config.rate,
                "SentLast24Hours": float(self.sent_24h),
            },
            "SendingEnabled": True,
            "ProductionAccessEnabled": True,
            "EnforcementStatus": "HEALTHY",
            "DedicatedIpAutoWarmupEnabled": False,
        }

    def _send(self, body: bytes) -> dict[str, Any]:
        try:
            document = json.loads(body)
        except ValueError:
            raise AwsError(400, "BadRequestException", "body is not JSON") from None
        check_shape(self.model, "SendEmailRequest", document)
        configuration_set = document.get("ConfigurationSetName")
        if configuration_set is not None and configuration_set not in (
            self.config.configuration_sets
        ):
            raise AwsError(
                404, "NotFoundException", f"Configuration set <{configuration_set}> does not exist."
            )
        raw = document["Content"].get("Raw")
        if raw is None:
            raise AwsError(400, "BadRequestException", "this sandbox takes Content.Raw messages")
        if not self.bucket.take():
            with self._lock:
                self.throttled += 1
            raise AwsError(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
        if self.sent_24h >= self.config.max_24_hour_send:
            raise AwsError(400, "LimitExceededException", "Daily message quota exceeded.")
        roll = self._random.random()
        if roll < self.config.faults / 2:
            raise AwsError(500, "InternalFailure", "injected internal failure")
        if roll < self.config.faults:
            with self._lock:
                self.throttled += 1
            raise AwsError(429, "TooManyRequestsException", "injected throttling")
        data = base64.b64decode(raw["Data"])
        head, separator, _ = data.partition(b"\r\n\r\n")
        if not separator:
            raise AwsError(400, "MessageRejected", "the message has no header/body separator")
        if any(len(line) > 1000 for line in data.split(b"\r\n")):
            raise AwsError(400, "MessageRejected", "a line is longer than 1,000 characters")
        parsed = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n")
        headers = {k.lower(): str(v) for k, v in parsed.items()}
        if "from" not in headers:
            raise AwsError(400, "MessageRejected", "the message has no From header")
        destination = document.get("Destination", {})
        recipients = [
            *destination.get("ToAddresses", []),
            *destination.get("CcAddresses", []),
            *destination.get("BccAddresses", []),
        ]
        if not recipients:
            recipients = [headers.get("to", "")]
        if len(recipients) != 1:
            raise AwsError(
                400, "BadRequestException", "this sandbox takes one recipient per message"
            )
        recipient = recipients[0]
        outcome = self.outcome_for(recipient)
        if outcome == "reject":
            with self._lock:
                self.rejected += 1
            raise AwsError(400, "MessageRejected", f"Email address is not verified: {recipient}")
        message_id = f"{int(time.time() * 1000):016x}-{uuid.uuid4()}-000000"
        with self._lock:
            self.sent_24h += 1
            self.accepted.append(
                Accepted(message_id, recipient, headers, data if self.config.keep_raw else None)
            )
        self._notify(outcome, message_id, recipient, document, headers)
        return {"MessageId": message_id}

    def _notify(
        self,
        outcome: str,
        message_id: str,
        recipient: str,
        document: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        if self.topic.endpoint is None:
            return  # no subscriber: SNS would drop them; signing them would only cost CPU
        now = _iso_now()
        configuration_set = document.get("ConfigurationSetName")
        mail = {
            "timestamp": now,
            "source": document.get("FromEmailAddress") or headers.get("from", ""),
            "sendingAccountId": self.topic.account,
            "messageId": message_id,
            "destination": [recipient],
            "headersTruncated": False,
            "commonHeaders": {
                "from": [headers.get("from", "")],
                "to": [recipient],
                "messageId": headers.get("message-id", ""),
                "subject": headers.get("subject", ""),
            },
        }
        if configuration_set:
            mail["tags"] = {"ses:configuration-set": [configuration_set]}
        # A configuration set publishes events ("eventType"); an identity's own
        # notifications say "notificationType". Serve must read both.
        kind_key = "eventType" if configuration_set else "notificationType"
        feedback = f"{int(time.time() * 1000):016x}-{uuid.uuid4()}-000000"
        events: list[dict[str, Any]] = [
            {
                kind_key: "Delivery",
                "mail": mail,
                "delivery": {
                    "timestamp": now,
                    "processingTimeMillis": 120,
                    "recipients": [recipient],
                    "smtpResponse": "250 2.0.0 OK",
                    "reportingMTA": "a8-1.smtp-out.sandbox.invalid",
                },
            }
        ]
        if outcome in ("bounce", "soft_bounce"):
            permanent = outcome == "bounce"
            events = [
                {
                    kind_key: "Bounce",
                    "mail": mail,
                    "bounce": {
                        "bounceType": "Permanent" if permanent else "Transient",
                        "bounceSubType": "General" if permanent else "MailboxFull",
                        "bouncedRecipients": [
                            {
                                "emailAddress": recipient,
                                "action": "failed",
                                "status": "5.1.1" if permanent else "4.2.2",
                                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                                if permanent
                                else "smtp; 452 4.2.2 mailbox full",
                            }
                        ],
                        "timestamp": now,
                        "feedbackId": feedback,
                        "reportingMTA": "dsn; a8-1.smtp-out.sandbox.invalid",
                    },
                }
            ]
        elif outcome == "complaint":
            events.append(
                {
                    kind_key: "Complaint",
                    "mail": mail,
                    "complaint": {
                        "complainedRecipients": [{"emailAddress": recipient}],
                        "timestamp": now,
                        "feedbackId": feedback,
                        "complaintFeedbackType": "abuse",
                        "userAgent": "sandbox-feedback-loop",
                        "arrivalDate": now,
                    },
                }
            )
        for event in events:
            self.topic.publish(event)
