"""The ASGI lifespan protocol for the sandboxes' plain ASGI apps."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Receive, Send


async def run_lifespan(receive: Receive, send: Send, on_shutdown: Callable[[], None]) -> None:
    """Answer startup at once; on shutdown call ``on_shutdown`` (stop delivery threads)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
