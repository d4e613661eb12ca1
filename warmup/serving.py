"""Uvicorn on a socket bound before it starts: in a thread (tests, benchmarks, the demo) or in
the foreground until Ctrl-C. Shared by the consent service and the Klaviyo sandbox, so it imports
nothing from the rest of warmup (and uvicorn only when a server is actually started)."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn


class PortUnavailable(OSError):
    """``host:port`` cannot be listened on (taken, or not an address of this machine)."""

    def __init__(self, host: str, port: int, reason: str, code: int | None = None) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host, self.port, self.reason, self.code = host, port, reason, code

    @property
    def hint(self) -> str:
        """What to change: the host when it is not this machine's, else the port."""
        if self.code == errno.EADDRNOTAVAIL or self.code is None:
            return (
                f"{self.host} is not an address of this machine, so it cannot be bound: "
                "pick --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)"
            )
        if self.code == errno.EACCES and 0 < self.port < 1024:
            return "ports below 1024 need root: pick --port 8080, or --port 0 for any free one"
        return PORT_HINT


PORT_HINT = "pick another --port, or --port 0 for any free one"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = any free one); ``PortUnavailable``
    if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: small replies go out at once instead of waiting ~40 ms
    # for the client's delayed ACK (Nagle), which dominated each request's time.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        # Listening before uvicorn starts lets a client connect as soon as the URL is printed.
        sock.listen(2048)
    except socket.gaierror as exc:  # a host name that does not resolve
        sock.close()
        raise PortUnavailable(host, port, exc.strerror or str(exc)) from None
    except OSError as exc:
        sock.close()
        raise PortUnavailable(host, port, exc.strerror or str(exc), exc.errno) from None
    return sock


def base_url(sock: socket.socket, host: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def _server(app: Any, options: dict[str, Any]) -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **options)
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(
    app: Any, sock: socket.socket, *, name: str, **options: Any
) -> Iterator[uvicorn.Server]:
    """Serve ``app`` on ``sock`` from a daemon thread until the block exits; closes ``sock``.

    ``options`` go to ``uvicorn.Config``.
    """
    server = _server(app, options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=name)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.01)
        yield server
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def serve_forever(app: Any, sock: socket.socket, **options: Any) -> None:
    """Serve ``app`` on ``sock`` in this thread until Ctrl-C; closes ``sock``."""
    try:
        _server(app, options).run(sockets=[sock])
    finally:
        sock.close()
