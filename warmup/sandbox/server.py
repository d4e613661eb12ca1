"""Running the sandbox: in the foreground (``warmup sandbox``) or in a thread (tests, demo)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from warmup.sandbox.app import DroppedConnection, SandboxApp, SandboxConfig


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


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it each reply stalls 40 ms on delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    # Listening before uvicorn starts lets a client connect as soon as the URL is printed.
    sock.listen(2048)
    return sock


def _server(app: SandboxApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30
    )
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(
    config: SandboxConfig | None = None, *, port: int = 0
) -> Iterator[RunningSandbox]:
    """Start the sandbox on 127.0.0.1 (port 0 = any free one), yield its URL and keys, stop."""
    config = config or SandboxConfig()
    sock = _bind(port)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = SandboxApp(config, base_url)
    server = _server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="warmup-sandbox"
    )
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.01)
        yield RunningSandbox(base_url, config.api_key, config.read_only_key, app)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def serve_forever(config: SandboxConfig, port: int, announce: object) -> None:
    """Run in the foreground until Ctrl-C; ``announce(base_url)`` is called once listening."""
    sock = _bind(port)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = SandboxApp(config, base_url)
    server = _server(app)
    if callable(announce):
        announce(base_url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
