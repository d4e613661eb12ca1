"""Running the consent service: in the foreground (``warmup serve``) or in a thread (tests,
benchmarks, the demo). Loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.applications import Starlette

from warmup import serving
from warmup.consent.app import ServiceSecrets, create_app
from warmup.consent.flow import run_consent_flow
from warmup.consent.worker import FlowRunner, FlowWorker
from warmup.email.tokens import unsubscribe_secret
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan
from warmup.store import open_store

log = logging.getLogger(__name__)


def load_secrets(loaded: LoadedPlan) -> ServiceSecrets:
    """Both secrets from the environment variables the plan names (never from the plan)."""
    plan = loaded.plan
    # The same rule as the email dispatcher, so links it signs verify here.
    rehearsal = plan.providers.new.kind == "file"
    link_secret = unsubscribe_secret(
        plan.unsubscribe.secret_env,
        rehearsal=rehearsal,
        store_path=loaded.store_path,
        env=loaded.env,
    )
    # Without it the unsubscribe links are still served: webhooks are answered 503 (a plan
    # whose provider sends no events, such as the file provider or a plain relay, needs none).
    webhook_secret = loaded.setting(plan.events.webhook_secret_env)
    return ServiceSecrets(link_secret, webhook_secret.encode() if webhook_secret else None)


@dataclass(frozen=True)
class RunningService:
    base_url: str
    app: Starlette
    worker: FlowWorker


def _bind(host: str, port: int) -> socket.socket:
    try:
        return serving.bind(host, port)
    except serving.PortUnavailable as exc:
        raise InvalidInput(str(exc), hint=exc.hint) from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _prepare(
    loaded: LoadedPlan, retry_seconds: float, run: FlowRunner | None
) -> tuple[Starlette, FlowWorker]:
    secrets = load_secrets(loaded)
    # Fail now on a missing or foreign store, not on the first unsubscribe.
    open_store(loaded.store_path, create=False).close()
    worker = FlowWorker(loaded, retry_seconds=retry_seconds, run=run or run_consent_flow)
    return create_app(loaded, secrets, worker=worker), worker


@contextmanager
def serve_in_thread(
    loaded: LoadedPlan,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    retry_seconds: float = 5.0,
    run: FlowRunner | None = None,
) -> Iterator[RunningService]:
    """Start the service (port 0 = any free one), yield its URL, stop it on exit."""
    app, worker = _prepare(loaded, retry_seconds, run)
    sock = _bind(host, port)
    url = serving.base_url(sock, host)
    with serving.serve_in_thread(app, sock, name="warmup-serve"):
        yield RunningService(url, app, worker)


def serve_forever(
    loaded: LoadedPlan,
    *,
    host: str = "127.0.0.1",
    port: int,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run in the foreground until Ctrl-C; ``announce(base_url)`` once listening."""
    app, _ = _prepare(loaded, 5.0, None)
    sock = _bind(host, port)
    if not _is_loopback(host):
        log.warning("listening on %s: reachable from other machines — put TLS in front", host)
    if announce is not None:
        announce(serving.base_url(sock, host))
    serving.serve_forever(app, sock)
