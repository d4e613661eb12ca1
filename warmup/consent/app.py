"""The ``warmup serve`` ASGI app: one-click unsubscribe, provider event webhooks, health.

Routes:
- ``GET  <unsubscribe path>?token=…`` — a landing page with a confirm button;
- ``POST <unsubscribe path>?token=…`` — RFC 8058 one-click (body ``List-Unsubscribe=One-Click``)
  and the landing page's button; the path is that of the plan's ``unsubscribe.url``
  (``/unsubscribe`` is always served too);
- ``POST /webhooks/events`` — signed provider events (shape in :mod:`warmup.consent.webhooks`);
- ``GET  /healthz`` — 200 ``{"status": "ok", …}`` when the store answers.

A bad or forged token, a wrong signature, malformed JSON, an oversized body or a batch that was
entirely stored before gets a 4xx and changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from warmup.clock import now
from warmup.consent.provider_routes import provider_routes
from warmup.consent.webhooks import BadWebhook, parse_events, verify_signature
from warmup.consent.worker import FlowWorker
from warmup.email.tokens import verify_token
from warmup.events import IncomingEvent, RecordResult, record_events, unsubscribe_backlog
from warmup.plan import LoadedPlan
from warmup.store import customers, now_iso, open_store

MAX_WEBHOOK_BYTES = 1024 * 1024
MAX_FORM_BYTES = 4096
LINK_SOURCE = "unsubscribe-link"
# The confirm page loads nothing, posts only to itself and may not be framed (clickjacking an
# unsubscribe button) or sniffed as another type.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
WEBHOOK_SOURCE = "new"


@dataclass(frozen=True)
class ServiceSecrets:
    unsubscribe: bytes
    # None: the plan's events.webhook_secret_env is unset, and webhooks are refused (503)
    webhook: bytes | None


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _page(
    title: str, text: str, *, status: int = 200, form_action: str | None = None
) -> HTMLResponse:
    button = ""
    if form_action is not None:
        button = (
            f'<form method="post" action="{html.escape(form_action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        f"{button}</body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", **PAGE_HEADERS},
    )


def create_app(
    loaded: LoadedPlan,
    secrets: ServiceSecrets,
    *,
    worker: FlowWorker | None = None,
    clock: Callable[[], datetime] = now,
) -> Starlette:
    """The service for one plan. ``worker`` runs the consent flow after consent events (none:
    events only wait in the store, for tests of the HTTP surface)."""
    plan_name = loaded.plan.name

    def store_events(events: list[IncomingEvent], source: str) -> RecordResult:
        store = open_store(loaded.store_path)
        try:
            return record_events(store, events, source=source)
        finally:
            store.close()

    def after(result: RecordResult) -> None:
        # Any new event may start a scenario's event flow (a scenario can listen to hard
        # bounces too); a pass with nothing to do costs two queries.
        if result.stored and worker is not None:
            worker.notify()

    def email_by_id(customer_id: int) -> str | None:
        store = open_store(loaded.store_path, create=False)
        try:
            return customers.email_for_id(store.backend, customer_id)
        finally:
            store.close()

    def email_of(request: Request) -> str | None:
        token = request.query_params.get("token", "")
        if not token or len(token) > 512:
            return None
        return verify_token(secrets.unsubscribe, plan_name, token, email_by_id)

    async def unsubscribe_page(request: Request) -> Response:
        if await run_in_threadpool(email_of, request) is None:
            return _page(
                "Invalid link",
                "This unsubscribe link is not valid. Use the link in "
                "the most recent email you received.",
                status=400,
            )
        return _page(
            "Unsubscribe",
            "Click the button to stop receiving these emails.",
            form_action=str(request.url.path) + "?" + str(request.url.query),
        )

    async def unsubscribe(request: Request) -> Response:
        try:
            await _body(request, MAX_FORM_BYTES)
        except _TooLarge:
            return _page("Request too large", "The request body is too large.", status=413)
        email = await run_in_threadpool(email_of, request)
        if email is None:
            return _page(
                "Invalid link",
                "This unsubscribe link is not valid; nothing was changed.",
                status=400,
            )
        # One event per address: a second click (or a mail client's retry) changes nothing.
        event = IncomingEvent(
            f"link:{email}",
            "unsubscribed",
            email,
            now_iso(clock()),
            {
                "via": "one-click"
                if request.headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"
                )
                else "post"
            },
        )
        result = await run_in_threadpool(store_events, [event], LINK_SOURCE)
        after(result)
        return _page("Unsubscribed", "You will not receive these emails any more.")

    async def webhook(request: Request) -> Response:
        if secrets.webhook is None:
            env = loaded.plan.events.webhook_secret_env
            return JSONResponse(
                {
                    "error": f"webhooks are off: {env} is not set where warmup serve runs; "
                    "export it (the signing secret configured at the provider) and restart"
                },
                status_code=503,
            )
        try:
            body = await _body(request, MAX_WEBHOOK_BYTES)
        except _TooLarge:
            return JSONResponse(
                {"error": f"body larger than {MAX_WEBHOOK_BYTES} bytes"}, status_code=413
            )
        try:
            verify_signature(secrets.webhook, body, request.headers.get("x-warmup-signature"))
            events = parse_events(body)
        except BadWebhook as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        result = await run_in_threadpool(store_events, events, WEBHOOK_SOURCE)
        after(result)
        answer: dict[str, Any] = {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "unknown_customers": result.unknown_customers,
        }
        if result.stored == 0:
            answer["error"] = "every event of this batch was already received; nothing changed"
            return JSONResponse(answer, status_code=409)
        return JSONResponse(answer)

    async def healthz(request: Request) -> Response:
        def check() -> dict[str, Any]:
            store = open_store(loaded.store_path)
            try:
                backlog = unsubscribe_backlog(store)
            finally:
                store.close()
            return {
                "status": "ok",
                "plan": plan_name,
                "unsubscribe_backlog": backlog.count,
                "flow_error": worker.last_error if worker else None,
            }

        return JSONResponse(await run_in_threadpool(check))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)

    paths = {"/unsubscribe", urlparse(loaded.plan.unsubscribe.url).path or "/unsubscribe"}
    routes = [Route(path, unsubscribe_page, methods=["GET"]) for path in sorted(paths)]
    routes += [Route(path, unsubscribe, methods=["POST"]) for path in sorted(paths)]
    routes += [
        Route("/webhooks/events", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    routes += provider_routes(loaded, store_events, after)
    return Starlette(routes=routes, lifespan=lifespan)
