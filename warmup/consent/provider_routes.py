"""Webhook routes of the email API providers, added to ``warmup serve`` beside its own.

- ``POST /webhooks/ses`` — Amazon SES events through an SNS HTTP(S) subscription
  (:mod:`warmup.consent.sns`): signature verified before anything is read; a verified
  SubscriptionConfirmation is confirmed; a notification's events are stored once each
  (source ``ses``). Verified messages get 200 even when every event was stored before: SNS
  retries anything else.
- ``POST /webhooks/sendgrid`` — SendGrid's signed Event Webhook
  (:mod:`warmup.consent.sendgrid_events`), key from ``events.sendgrid.public_key_env``
  (503 while that variable is not set); events stored once each (source ``sendgrid``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from warmup.consent import sendgrid_events
from warmup.consent.sns import SnsVerifier, ses_events
from warmup.consent.webhooks import BadWebhook
from warmup.events import IncomingEvent, RecordResult
from warmup.plan import LoadedPlan

MAX_BODY = 256 * 1024  # SNS messages are at most 256 KB
SES_SOURCE = "ses"
SENDGRID_SOURCE = "sendgrid"
MAX_SENDGRID_BODY = 8 * 1024 * 1024

StoreEvents = Callable[[list[IncomingEvent], str], RecordResult]
After = Callable[[RecordResult], None]


async def _read(request: Request, limit: int) -> bytes | None:
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def provider_routes(loaded: LoadedPlan, store_events: StoreEvents, after: After) -> list[Route]:
    sns = loaded.plan.events.sns
    verifier = SnsVerifier(sns.trust_url_prefixes_for_tests, sns.topic_arns)

    async def ses_webhook(request: Request) -> Response:
        body = await _read(request, MAX_BODY)
        if body is None:
            return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        try:
            message = await run_in_threadpool(verifier.parse, body)
            if message["Type"] == "SubscriptionConfirmation":
                await run_in_threadpool(verifier.confirm, message)
                return JSONResponse({"confirmed": message["TopicArn"]})
            if message["Type"] == "UnsubscribeConfirmation":
                return JSONResponse({"unsubscribed": message["TopicArn"]})
            events = ses_events(message)
        except BadWebhook as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        result = RecordResult()
        if events:
            result = await run_in_threadpool(store_events, events, SES_SOURCE)
            after(result)
        answer: dict[str, Any] = {"stored": result.stored, "duplicates": result.duplicates}
        return JSONResponse(answer)

    settings = loaded.plan.events.sendgrid
    key_text = loaded.setting(settings.public_key_env)
    key: Any = None
    key_problem = f"{settings.public_key_env} is not set: it holds SendGrid's verification key"
    if key_text:
        try:
            key = sendgrid_events.load_public_key(key_text)
        except ValueError as exc:
            key_problem = f"{settings.public_key_env}: {exc}"

    async def sendgrid_webhook(request: Request) -> Response:
        if key is None:
            return JSONResponse({"error": key_problem}, status_code=503)
        body = await _read(request, MAX_SENDGRID_BODY)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            sendgrid_events.verify(
                key,
                body,
                request.headers.get(sendgrid_events.SIGNATURE_HEADER),
                request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
                tolerance=settings.tolerance_seconds,
            )
            events = sendgrid_events.parse(body)
        except BadWebhook as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        result = RecordResult()
        if events:
            result = await run_in_threadpool(store_events, events, SENDGRID_SOURCE)
            after(result)
        return JSONResponse({"stored": result.stored, "duplicates": result.duplicates})

    return [
        Route("/webhooks/ses", ses_webhook, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
    ]
