"""Running the SES sandbox: in a thread (tests, demo, benchmarks) or in the foreground."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from warmup import serving
from warmup.sandbox.ses import SesSandboxApp, SesSandboxConfig

HOST = "127.0.0.1"
_OPTIONS = {"timeout_keep_alive": 30}


@dataclass(frozen=True)
class RunningSes:
    base_url: str
    access_key_id: str
    secret_access_key: str
    app: SesSandboxApp


def _running(app: SesSandboxApp, base_url: str) -> RunningSes:
    key_id, secret = next(iter(app.config.credentials.items()))
    return RunningSes(base_url, key_id, secret, app)


@contextmanager
def serve_ses_in_thread(
    config: SesSandboxConfig | None = None, *, port: int = 0
) -> Iterator[RunningSes]:
    """Start the SES sandbox on 127.0.0.1 (port 0 = any free one); yield its URL and keys."""
    config = config or SesSandboxConfig()
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SesSandboxApp(config, base_url)
    with serving.serve_in_thread(app, sock, name="warmup-ses-sandbox", **_OPTIONS):
        yield _running(app, base_url)


def serve_ses_forever(
    config: SesSandboxConfig,
    port: int,
    announce: Callable[[RunningSes], None],
    *,
    sns_endpoint: str | None = None,
    on_unconfirmed: Callable[[int, int], None] | None = None,
    on_confirmed: Callable[[int], None] | None = None,
) -> None:
    """Run in the foreground until Ctrl-C; ``announce`` is called once listening; the
    subscription's progress goes to ``on_unconfirmed`` and ``on_confirmed``."""
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SesSandboxApp(config, base_url)
    if sns_endpoint:
        app.topic.on_unconfirmed, app.topic.on_confirmed = on_unconfirmed, on_confirmed
        app.topic.subscribe(sns_endpoint)
    announce(_running(app, base_url))
    serving.serve_forever(app, sock, **_OPTIONS)
