"""A 429 whose ``X-RateLimit-Reset`` is not a plausible Unix time (a superscript digit, 400
digits, a year away) waits a bounded while: float("²") raised ValueError and 400 digits gave
an infinite wait, which the dispatcher turned into an OverflowError (a traceback)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from warmup.errors import RateLimitedDelivery
from warmup.providers.base import MessageParts, OutgoingEmail
from warmup.providers.sendgrid import SendGridProvider, SendGridSettings

RESET: list[str] = []


@pytest.fixture
def throttling() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(429)
            self.send_header("X-RateLimit-Reset", RESET[-1])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "reset",
    ["²", "9" * 400, "4102444800", "-1", "soon"],  # 4102444800: the year 2100
)
def test_an_implausible_reset_waits_at_most_a_minute(throttling: str, reset: str) -> None:
    RESET.append(reset)
    session = SendGridProvider(SendGridSettings(api_key="SG.k", base_url=throttling)).open_session()
    message = OutgoingEmail(
        "k1",
        "news@send.acme.example",
        "ann@example.com",
        "<m@x>",
        b"",
        MessageParts("News <news@send.acme.example>", None, "", "Hi", "t", "<p>h</p>", "<u>"),
    )
    try:
        [result] = session.send_batch([message], lambda batch: [True] * len(batch))
    finally:
        session.close()
    assert isinstance(result, RateLimitedDelivery)
    assert math.isfinite(result.retry_after) and 0 <= result.retry_after <= 60
