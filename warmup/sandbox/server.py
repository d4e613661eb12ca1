"""Running the sandbox: in the foreground (``warmup sandbox``) or in a thread (tests, demo)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from warmup import serving
from warmup.sandbox.app import DroppedConnection, SandboxApp, SandboxConfig

HOST = "127.0.0.1"
_OPTIONS = {"timeout_keep_alive": 30}


class _HideDroppedConnections(logging.Filter):
    """Injected dropped connections are on purpose; keep uvicorn from logging them as crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    api_key: str
    read_only_key: str
    app: SandboxApp


@contextmanager
def serve_in_thread(
    config: SandboxConfig | None = None, *, port: int = 0
) -> Iterator[RunningSandbox]:
    """Start the sandbox on 127.0.0.1 (port 0 = any free one), yield its URL and keys, stop."""
    config = config or SandboxConfig()
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SandboxApp(config, base_url)
    with serving.serve_in_thread(app, sock, name="warmup-sandbox", **_OPTIONS):
        yield RunningSandbox(base_url, config.api_key, config.read_only_key, app)


def serve_forever(config: SandboxConfig, port: int, announce: Callable[[str], None]) -> None:
    """Run in the foreground until Ctrl-C; ``announce(base_url)`` is called once listening."""
    sock = serving.bind(HOST, port)
    base_url = serving.base_url(sock, HOST)
    app = SandboxApp(config, base_url)
    announce(base_url)
    serving.serve_forever(app, sock, **_OPTIONS)
