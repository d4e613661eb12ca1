"""The sandbox's ASGI application: Klaviyo's wire behaviour in front of the handlers.

Each request goes through the checks Klaviyo makes, in this order: route (404/405), API key
(401), ``revision`` header (400 malformed, 404 unknown, 410 retired: ``revisions``), key scopes
(403), per-endpoint rate limit (429 + Retry-After), injected faults, JSON:API body against the
closed OpenAPI schema (400), then the handler.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from warmup.sandbox import params as params_
from warmup.sandbox import revisions, spec
from warmup.sandbox.handlers import HANDLERS, ApiError, Call, Reply, invalid, settle
from warmup.sandbox.state import Account

# The handlers of these modules register themselves in HANDLERS on import.
from warmup.sandbox import handlers_events, handlers_more  # noqa: F401  isort: skip

MEDIA_TYPE = "application/vnd.api+json"
FAST_SCALE = 100.0
READ_SCOPES = frozenset(
    {"events:read", "lists:read", "metrics:read", "profiles:read", "subscriptions:read"}
)


def new_api_key() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "pk_" + "".join(secrets.choice(alphabet) for _ in range(34))


@dataclass
class SandboxConfig:
    """``faults``: share of requests answered with a 429, a 500, a slow reply or a dropped
    connection. ``fast``: time ×100 (rate-limit windows of 10 ms and 0.6 s with Klaviyo's
    counts) and jobs done in milliseconds, for tests and rehearsals."""

    api_key: str = field(default_factory=new_api_key)
    read_only_key: str = field(default_factory=new_api_key)
    faults: float = 0.0
    fast: bool = False
    state: Path | None = None
    seed: int | None = None
    # Adversities (warmup.sandbox.identity): refuse non-ASCII local parts and 404 unknown
    # profile ids like a strict account; ``meddle``: share of list adds another client follows
    # with an edit of its own.
    strict: bool = False
    meddle: float = 0.0

    @property
    def time_scale(self) -> float:
        return FAST_SCALE if self.fast else 1.0


class DroppedConnection(Exception):
    """Raised after the response has started so that uvicorn closes the socket mid-reply."""


async def _hang_up(send: Send) -> bool:
    """Close the connection before any byte of a reply, as a crashed or cut-off Klaviyo front end
    would. ASGI has no message for this, so it needs uvicorn's connection (the ``transport`` of
    the cycle ``send`` belongs to); False when ``send`` is not uvicorn's own (a wrapper), and the
    caller then cuts the reply after its status line instead."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return False
    transport.abort()
    # Let uvicorn see the connection lost, so it does not answer a 500 on the app's behalf.
    for _ in range(3):
        await asyncio.sleep(0)
    return True


class FixedWindows:
    """Klaviyo's fixed-window counters: per operation, one per window length (1 s, 1 min, day).

    ``time_scale`` > 1 (``--fast``) shortens every window by that factor and keeps the counts,
    so the tiers keep their shape: a burst Klaviyo would throttle is throttled, only sooner over.
    """

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self.counts: dict[tuple[str, float], tuple[int, int]] = {}

    def take(self, op: spec.Operation) -> tuple[int | None, dict[str, str]]:
        """Count the request; return (Retry-After seconds if refused, RateLimit headers)."""
        now = time.monotonic()
        retry: float | None = None
        for limit in op.limits:
            length = limit.window / self.time_scale
            window = int(now // length)
            current, used = self.counts.get((op.op_id, limit.window), (window, 0))
            if current != window:
                used = 0
            if used >= limit.count:
                wait = (window + 1) * length - now
                retry = max(retry or 0.0, wait)
        if retry is not None:
            return max(1, math.ceil(retry)), {}
        headers: dict[str, str] = {}
        for limit in op.limits:
            length = limit.window / self.time_scale
            window = int(now // length)
            current, used = self.counts.get((op.op_id, limit.window), (window, 0))
            used = used + 1 if current == window else 1
            self.counts[(op.op_id, limit.window)] = (window, used)
            if limit.window == 60.0:
                headers = {
                    "RateLimit-Limit": str(limit.count),
                    "RateLimit-Remaining": str(max(0, limit.count - used)),
                    "RateLimit-Reset": str(math.ceil((window + 1) * length - now)),
                }
        return None, headers


def throttled(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "throttled",
        "Request was throttled.",
        f"Request was throttled. Expected available in {retry_after} second(s).",
        "/data/",
        {},
        {"Retry-After": str(retry_after)},
    )


class SandboxApp:
    """The ASGI callable. ``account`` is public so tests and the demo can inspect the state."""

    def __init__(self, config: SandboxConfig, base_url: str = "") -> None:
        self.config = config
        self.base_url = base_url
        self.account = Account(job_delay=0.02 if config.fast else 0.5, seed=config.seed)
        if config.state is not None and config.state.exists():
            self.account.load(config.state)
        self.account.strict = config.strict
        self.account.meddle = config.meddle
        self.windows = FixedWindows(config.time_scale)
        self.rng = random.Random(config.seed)
        self.requests: dict[str, int] = {}
        self.throttled = 0
        self._saved_at = time.monotonic()
        self._dirty = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        fault = self._pick_fault(request.url.path)
        if fault == "slow":
            await asyncio.sleep(0.3 if self.config.fast else 3.0)
        try:
            status, document, headers = await self._handle(request, fault)
        except ApiError as exc:
            status, document, headers = exc.status, exc.document(), exc.headers
        body = b"" if document is None else json.dumps(document).encode()
        headers = {**headers, "content-type": MEDIA_TYPE} if document is not None else headers
        response = Response(body, status_code=status, headers=headers)
        if fault == "drop-before" and await _hang_up(send):
            return
        if fault in ("drop-before", "drop-after"):
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-length", str(len(body) + 100).encode())],
                }
            )
            raise DroppedConnection(request.url.path)
        await response(scope, receive, send)

    def _pick_fault(self, path: str) -> str | None:
        if self.config.faults <= 0 or not path.startswith("/api/"):
            return None
        if self.rng.random() >= self.config.faults:
            return None
        return self.rng.choice(["429", "500", "slow", "drop-before", "drop-after"])

    async def _handle(
        self, request: Request, fault: str | None
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        path = request.url.path
        found = spec.match(request.method, path)
        if found is None:
            if spec.path_exists(path):
                raise ApiError(
                    405,
                    "method_not_allowed",
                    "Method not allowed.",
                    f'Method "{request.method}" not allowed.',
                    None,
                )
            raise ApiError(404, "not_found", "Not found.", "Not found.", None)
        op, params = found
        scopes = self._authenticate(request.headers.get("authorization"))
        self._check_revision(request.headers.get("revision"))
        missing = [s for s in op.scopes if s not in scopes]
        if missing:
            raise ApiError(
                403,
                "permission_denied",
                "You do not have permission to perform this action.",
                f"This API key is missing required scopes: {', '.join(missing)}.",
                None,
            )
        retry_after, rate_headers = self.windows.take(op)
        if retry_after is not None:
            self.throttled += 1
            raise throttled(retry_after)
        self.requests[op.op_id] = self.requests.get(op.op_id, 0) + 1
        try:
            reply = await self._run(request, op, params, fault)
        except ApiError as exc:
            if exc.status != 429:  # Klaviyo sends RateLimit-* on every answer but a 429
                exc.headers = {**rate_headers, **exc.headers}
            raise
        return reply.status, reply.document, rate_headers

    async def _run(
        self, request: Request, op: spec.Operation, params: dict[str, str], fault: str | None
    ) -> Reply:
        if fault == "429":
            # Klaviyo's own throttles never say 0 seconds; neither does an injected one.
            raise throttled(1)
        if fault in ("500", "drop-before"):  # drop-before: nothing happened, nothing is sent
            raise ApiError(
                500, "error", "A server error occurred.", "A server error occurred.", None
            )
        params_.check(op.query, dict(request.query_params))
        params_.check_filter(op.filters, dict(request.query_params))
        body = await self._body(request, op)
        settle(self.account)
        call = Call(
            self.account,
            self.base_url or f"{request.url.scheme}://{request.url.netloc}",
            request.url.path,
            params,
            dict(request.query_params),
            body,
        )
        reply = HANDLERS[op.op_id](call)
        if request.method != "GET":
            self._dirty = True
            self._maybe_save()
        return reply

    def _authenticate(self, header: str | None) -> frozenset[str]:
        if not header or not header.startswith("Klaviyo-API-Key "):
            raise ApiError(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.",
                None,
            )
        key = header.removeprefix("Klaviyo-API-Key ").strip()
        if secrets.compare_digest(key, self.config.api_key):
            return (
                frozenset({"lists:write", "profiles:write", "subscriptions:write", "events:write"})
                | READ_SCOPES
            )
        if secrets.compare_digest(key, self.config.read_only_key):
            return READ_SCOPES
        raise ApiError(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            "Incorrect authentication credentials.",
            None,
        )

    @staticmethod
    def _check_revision(revision: str | None) -> None:
        outcome = revisions.check(revision)
        if isinstance(outcome, revisions.Refusal):
            raise ApiError(outcome.status, outcome.code, outcome.title, outcome.detail, None)
        # Every live revision is served with the shapes of revisions.SHAPES_REVISION.

    @staticmethod
    async def _body(request: Request, op: spec.Operation) -> Any:
        if op.validator is None:
            return None
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise invalid("The payload provided in the request is invalid.") from None
        error = spec.first_error(op, body)
        if error is not None:
            detail, pointer = spec.describe(error, body)
            raise invalid(detail, pointer)
        return body

    def _maybe_save(self, force: bool = False) -> None:
        if self.config.state is None or not self._dirty:
            return
        if force or time.monotonic() - self._saved_at > 5:
            self.account.dump(self.config.state)
            self._saved_at = time.monotonic()
            self._dirty = False

    def flush(self) -> None:
        """Finish pending jobs and write the state file (on shutdown)."""
        for job in self.account.pending:
            job.ready_at = 0
        settle(self.account)
        self._dirty = True
        self._maybe_save(force=True)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return
