"""Running the SendGrid sandbox: in a thread (tests, demo, benchmarks) or in the foreground."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from warmup import serving
from warmup.sandbox.sendgrid import SendGridSandboxApp, SendGridSandboxConfig

HOST = "127.0.0.1"
_OPTIONS = {"timeout_keep_alive": 30}


@dataclass(frozen=True)
class RunningSendGrid:
    base_url: str
    api_key: str
    # The Event Webhook's verification key (base64 DER, ECDSA P-256), as SendGrid shows it.
    public_key: str
    app: SendGridSandboxApp


@contextmanager
def serve_sendgrid_in_thread(
    config: SendGridSandboxConfig | None = None, *, port: int = 0
) -> Iterator[RunningSendGrid]:
    config = config or SendGridSandboxConfig()
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SendGridSandboxApp(config, base_url)
    with serving.serve_in_thread(app, sock, name="warmup-sendgrid-sandbox", **_OPTIONS):
        yield RunningSendGrid(base_url, config.api_key, app.hook.public_key, app)


def serve_sendgrid_forever(
    config: SendGridSandboxConfig,
    port: int,
    announce: Callable[[RunningSendGrid], None],
    *,
    webhook_url: str | None = None,
) -> None:
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SendGridSandboxApp(config, base_url)
    app.hook.url = webhook_url
    announce(RunningSendGrid(base_url, config.api_key, app.hook.public_key, app))
    serving.serve_forever(app, sock, **_OPTIONS)
