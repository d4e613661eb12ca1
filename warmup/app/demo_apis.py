"""`warmup demo --provider ses|sendgrid`: the email API sandboxes, and `warmup serve` receiving
their signed events, in place of the SMTP sink. Everything stays on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from warmup.consent import serve_in_thread as serve_consent
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan

PROVIDERS = ("smtp", "ses", "sendgrid")


@dataclass
class ApiTarget:
    label: str
    new: dict[str, Any]
    events: dict[str, Any]
    env: dict[str, str]
    delivered: Callable[[], int]
    # Subscribes the sandbox's event feed to a running `warmup serve` (its base URL).
    connect: Callable[[str], None]
    # Waits until every event so far reached `warmup serve`.
    settle: Callable[[], None] = field(default=lambda: None)
    # Sends every event already delivered again (what a provider's retries do).
    replay: Callable[[], None] = field(default=lambda: None)
    # The events webhook's path at `warmup serve`.
    path: str = ""


@contextmanager
def api_target(provider: str) -> Iterator[ApiTarget]:
    if provider == "ses":
        from warmup.sandbox.ses import SesSandboxConfig
        from warmup.sandbox.ses_server import serve_ses_in_thread

        with serve_ses_in_thread(SesSandboxConfig(fast=True)) as ses:
            topic = ses.app.topic

            def connect(base_url: str) -> None:
                topic.subscribe(base_url + "/webhooks/ses")
                topic.flush()
                if not topic.confirmed:
                    raise InvalidInput("warmup serve did not confirm the SNS subscription")

            yield ApiTarget(
                label=f"SES-compatible API and SNS topic on {ses.base_url}",
                new={
                    "kind": "ses",
                    "region": ses.app.config.region,
                    "endpoint_url": ses.base_url,
                    "configuration_set": "warmup",
                    "max_connections": 8,
                },
                events={"sns": {"trust_url_prefixes_for_tests": [ses.base_url + "/"]}},
                env={
                    "AWS_ACCESS_KEY_ID": ses.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": ses.secret_access_key,
                },
                delivered=lambda: len(ses.app.accepted),
                connect=connect,
                settle=lambda: _wait(topic.flush),
                replay=topic.redeliver,
                path="/webhooks/ses",
            )
        return
    if provider == "sendgrid":
        from warmup.sandbox.sendgrid import SendGridSandboxConfig
        from warmup.sandbox.sendgrid_server import serve_sendgrid_in_thread

        with serve_sendgrid_in_thread(SendGridSandboxConfig(fast=True)) as sg:
            hook = sg.app.hook

            def connect_sg(base_url: str) -> None:
                hook.url = base_url + "/webhooks/sendgrid"

            yield ApiTarget(
                label=f"SendGrid-compatible API on {sg.base_url}",
                new={"kind": "sendgrid", "base_url": sg.base_url, "max_connections": 4},
                events={},
                env={"SENDGRID_API_KEY": sg.api_key, "SENDGRID_WEBHOOK_PUBLIC_KEY": sg.public_key},
                delivered=lambda: sg.app.accepted,
                connect=connect_sg,
                settle=lambda: _wait(hook.flush),
                replay=hook.redeliver,
                path="/webhooks/sendgrid",
            )
        return
    raise InvalidInput(
        f"--provider {provider!r} is not one of {', '.join(PROVIDERS)}",
        hint="write --provider smtp, ses or sendgrid",
    )


def _wait(flush: Callable[[float], bool]) -> None:
    if not flush(60):
        raise InvalidInput("the sandbox's events did not reach warmup serve within 60 s")


def start_events(stack: ExitStack, target: ApiTarget, loaded: LoadedPlan) -> str:
    """`warmup serve` for the plan, subscribed to the sandbox's events; its base URL."""
    service = stack.enter_context(serve_consent(loaded))
    target.connect(service.base_url)
    return service.base_url


def webhook_secret() -> dict[str, str]:
    return {"WARMUP_WEBHOOK_SECRET": secrets.token_urlsafe(32)}
