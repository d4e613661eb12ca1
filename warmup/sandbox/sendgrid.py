"""A SendGrid v3 Mail Send compatible endpoint with its signed Event Webhook, for rehearsals.

``POST /v3/mail/send`` is checked like SendGrid checks it: ``Authorization: Bearer <key>``
(401), body size (413 over 20 MB), the body against the request schema of SendGrid's own
OpenAPI document (``sendgrid_spec/``, 400 with SendGrid's ``{"errors": [{"message", "field",
"help"}]}``), the documented limits the schema cannot say (1,000 recipients per request, 10,000
bytes of substitutions per personalization, reserved headers), a request rate with 429 and
``X-RateLimit-Limit/Remaining/Reset``, injected faults; then 202 with ``X-Message-Id``.

A recipient whose local part starts ``reject+`` is refused as an invalid address (400 naming
``personalizations.N.to.0.email``, as SendGrid does); ``bounce+`` bounces, ``blocked+`` is
blocked (a soft bounce), ``complaint+`` is delivered and reported as spam, ``defer+`` is
deferred once (a ``deferred`` event) then delivered, everyone else is delivered. Events go to
the webhook URL in batches, signed as SendGrid signs them: ECDSA P-256 with SHA-256 over the
timestamp header followed by the raw body, in ``X-Twilio-Email-Event-Webhook-Signature`` (base64
DER) and ``…-Timestamp``.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from warmup.sandbox.delivery import Deliveries
from warmup.sandbox.lifespan import run_lifespan

SCHEMA_FILE = Path(__file__).with_name("sendgrid_spec") / "mail_send.schema.json"
MAX_BODY = 20 * 1024 * 1024
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
FAST_SCALE = 100.0
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_OUTCOMES = {
    "bounce+": "bounce",
    "blocked+": "blocked",
    "complaint+": "complaint",
    "defer+": "defer",
}


def new_api_key() -> str:
    return "SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(32)


@dataclass
class SendGridSandboxConfig:
    api_key: str = field(default_factory=new_api_key)
    requests_per_second: float = 10.0
    fast: bool = False
    faults: float = 0.0
    seed: int | None = None
    keep_messages: bool = False
    # Events per webhook POST (SendGrid batches them too), and the longest a partial batch
    # waits before it is posted anyway (SendGrid: every 30 s or when a batch is full).
    events_per_post: int = 500
    events_max_wait_seconds: float = 30.0

    @property
    def rate(self) -> float:
        return self.requests_per_second * (FAST_SCALE if self.fast else 1.0)


class SandboxError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers


class EventHook:
    """SendGrid's Event Webhook: signed batches of events POSTed to one URL."""

    def __init__(self, per_post: int, max_wait: float = 30.0) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()
        self.url: str | None = None
        self.per_post = per_post
        self.max_wait = max_wait
        self._timer: threading.Timer | None = None
        self.posted: list[bytes] = []
        self.failures = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._out: Deliveries[bytes] = Deliveries(self._deliver, "sg-events")

    def sign(self, timestamp: str, body: bytes) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def add(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending += events
            while len(self._pending) >= self.per_post:
                self._post_locked(self._pending[: self.per_post])
                self._pending = self._pending[self.per_post :]
            if self._pending and self._timer is None:
                # A partial batch goes out after max_wait: a foreground sandbox has nobody
                # calling flush, and a rehearsal rarely fills a batch.
                self._timer = threading.Timer(self.max_wait, self._post_pending)
                self._timer.daemon = True
                self._timer.start()

    def _post_pending(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending:
                self._post_locked(self._pending)
                self._pending = []

    def _post_locked(self, events: list[dict[str, Any]]) -> None:
        self._out.put(json.dumps(events).encode())

    def flush(self, timeout: float = 10.0) -> bool:
        with self._lock:
            if self._pending:
                self._post_locked(self._pending)
                self._pending = []
        return self._out.wait(timeout)

    def redeliver(self) -> None:
        """POST every delivered batch again (SendGrid retries; replays must change nothing)."""
        with self._lock:
            bodies = list(self.posted)
        for body in bodies:
            self._out.put(body)

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._out.close()

    def _deliver(self, client: httpx.Client, body: bytes) -> None:
        if self.url is None:
            return
        for attempt in range(4):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: self.sign(timestamp, body),
                TIMESTAMP_HEADER: timestamp,
                "User-Agent": "SendGrid Event API",
            }
            try:
                reply = client.post(self.url, content=body, headers=headers)
                if 200 <= reply.status_code < 300:
                    with self._lock:
                        if body not in self.posted:
                            self.posted.append(body)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(min(1.0, 0.05 * 2**attempt))
        self.failures += 1


def _event_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


class SendGridSandboxApp:
    def __init__(self, config: SendGridSandboxConfig, base_url: str) -> None:
        self.config, self.base_url = config, base_url
        schema = json.loads(SCHEMA_FILE.read_text())
        self.validator = Draft4Validator(schema)
        self.hook = EventHook(
            config.events_per_post,
            config.events_max_wait_seconds / (FAST_SCALE if config.fast else 1.0),
        )
        self.requests = 0
        self.throttled = 0
        self.accepted = 0
        self.messages: list[dict[str, Any]] = []
        self._window = (0, 0)
        self._lock = threading.Lock()
        self._random = random.Random(config.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self.hook.close)
            return
        request = Request(scope, receive)
        body = await request.body()
        try:
            response = self.handle(request, body)
        except SandboxError as exc:
            response = Response(
                json.dumps(
                    {"errors": [{"message": exc.message, "field": exc.field, "help": None}]}
                ),
                status_code=exc.status,
                media_type="application/json",
                headers=exc.headers,
            )
        await response(scope, receive, send)

    def handle(self, request: Request, body: bytes) -> Response:
        if request.url.path != "/v3/mail/send":
            raise SandboxError(404, "resource not found")
        if request.method != "POST":
            raise SandboxError(405, "method not allowed")
        with self._lock:
            self.requests += 1
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {self.config.api_key}".encode()):
            raise SandboxError(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        self._rate_limit()
        if len(body) > MAX_BODY:
            raise SandboxError(
                413, "The JSON payload you have included in your request is too large."
            )
        roll = self._random.random()
        if roll < self.config.faults:
            raise SandboxError(500, "injected internal error")
        try:
            document = json.loads(body)
        except ValueError:
            raise SandboxError(400, "Bad Request", None) from None
        error = next(iter(sorted(self.validator.iter_errors(document), key=str)), None)
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or None
            raise SandboxError(400, error.message, where)
        self._check_limits(document)
        message_id = _event_id()
        self._accept(document, message_id)
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    def _rate_limit(self) -> None:
        limit = max(1, int(self.config.rate))
        now = time.time()
        second = int(now)
        with self._lock:
            window, used = self._window
            if window != second:
                window, used = second, 0
            used += 1
            self._window = (window, used)
            if used > limit:
                self.throttled += 1
                raise SandboxError(
                    429,
                    "too many requests",
                    **{
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(second + 1),
                    },
                )

    def _check_limits(self, document: dict[str, Any]) -> None:
        recipients = 0
        for index, personalization in enumerate(document["personalizations"]):
            for kind in ("to", "cc", "bcc"):
                recipients += len(personalization.get(kind, []))
            for slot, to in enumerate(personalization.get("to", [])):
                local = str(to.get("email", "")).partition("@")[0]
                if "@" not in str(to.get("email", "")) or local.startswith("reject+"):
                    raise SandboxError(
                        400,
                        "Does not contain a valid address.",
                        f"personalizations.{index}.to.{slot}.email",
                    )
            size = sum(
                len(str(k).encode()) + len(str(v).encode())
                for k, v in personalization.get("substitutions", {}).items()
            )
            if size > MAX_SUBSTITUTION_BYTES:
                raise SandboxError(
                    400,
                    "The maximum total collective size of your substitutions cannot exceed "
                    "10,000 bytes per personalization object.",
                    f"personalizations.{index}.substitutions",
                )
            for name in personalization.get("headers", {}):
                if name.lower() in RESERVED_HEADERS:
                    raise SandboxError(
                        400,
                        f"The {name} header is reserved.",
                        f"personalizations.{index}.headers",
                    )
        if recipients > MAX_RECIPIENTS:
            raise SandboxError(
                400,
                "The personalizations array must contain at most 1000 recipients in total.",
                "personalizations",
            )

    def _accept(self, document: dict[str, Any], message_id: str) -> None:
        now = int(time.time())
        events: list[dict[str, Any]] = []
        content = {part["type"]: part["value"] for part in document["content"]}
        for index, personalization in enumerate(document["personalizations"]):
            substitutions = personalization.get("substitutions", {})
            custom = personalization.get("custom_args", {})
            for to in personalization["to"]:
                email = to["email"]
                sg_message_id = f"{message_id}.filter0001.{index}.0"
                base = {"email": email, "timestamp": now, "sg_message_id": sg_message_id}
                base |= {str(k): v for k, v in custom.items()}
                local = email.partition("@")[0]
                outcome = next(
                    (o for prefix, o in _OUTCOMES.items() if local.startswith(prefix)), "deliver"
                )
                events.append({**base, "event": "processed", "sg_event_id": _event_id()})
                if outcome == "bounce":
                    events.append(
                        {
                            **base,
                            "event": "bounce",
                            "type": "bounce",
                            "status": "5.1.1",
                            "reason": "550 5.1.1 The email account does not exist.",
                            "sg_event_id": _event_id(),
                        }
                    )
                elif outcome == "blocked":
                    events.append(
                        {
                            **base,
                            "event": "bounce",
                            "type": "blocked",
                            "status": "4.0.0",
                            "reason": "421 try again later",
                            "sg_event_id": _event_id(),
                        }
                    )
                else:
                    if outcome == "defer":
                        # the receiving server said "try again later" once, then took it
                        events.append(
                            {
                                **base,
                                "event": "deferred",
                                "response": "421 4.7.28 try again later",
                                "attempt": "1",
                                "sg_event_id": _event_id(),
                            }
                        )
                    events.append({**base, "event": "delivered", "sg_event_id": _event_id()})
                    if outcome == "complaint":
                        events.append({**base, "event": "spamreport", "sg_event_id": _event_id()})
                if self.config.keep_messages:
                    text, html = content.get("text/plain", ""), content.get("text/html", "")
                    for tag, value in substitutions.items():
                        text, html = text.replace(tag, value), html.replace(tag, value)
                    self.messages.append(
                        {
                            "to": email,
                            "subject": personalization.get("subject", document["subject"]),
                            "headers": personalization.get("headers", {}),
                            "text": text,
                            "html": html,
                            "custom_args": custom,
                        }
                    )
        with self._lock:
            self.accepted += len(document["personalizations"])
        if self.hook.url:
            self.hook.add(events)
