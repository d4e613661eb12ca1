"""The SendGrid sandbox's Event Webhook posts a partial batch after a while, as SendGrid does
(every 30 s or when a batch is full): a foreground `warmup sandbox --provider sendgrid
--events-to URL` has nobody calling ``flush``, so a rehearsal of fewer events than a batch
must still see them reach `warmup serve`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from warmup.sandbox.sendgrid import EventHook, SendGridSandboxApp, SendGridSandboxConfig


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/sendgrid", bodies
    finally:
        server.shutdown()
        server.server_close()


def _wait_for(bodies: list[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not bodies and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_partial_batch_is_posted_without_a_flush(receiver: tuple[str, list[bytes]]) -> None:
    url, bodies = receiver
    hook = EventHook(per_post=500, max_wait=0.1)
    hook.url = url
    try:
        hook.add([{"event": "delivered", "email": "a@example.com", "sg_event_id": "e1"}])
        _wait_for(bodies, 5)
        assert len(bodies) == 1 and b'"e1"' in bodies[0]
        hook.add([{"event": "bounce", "email": "b@example.com", "sg_event_id": "e2"}])
        deadline = time.monotonic() + 5
        while len(bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(bodies) == 2 and b'"e2"' in bodies[1]
    finally:
        hook.close()


def test_the_fast_sandbox_waits_a_hundredth_of_sendgrids_30_seconds() -> None:
    slow = SendGridSandboxApp(SendGridSandboxConfig(), "http://127.0.0.1:1")
    fast = SendGridSandboxApp(SendGridSandboxConfig(fast=True), "http://127.0.0.1:1")
    assert slow.hook.max_wait == 30.0
    assert fast.hook.max_wait == pytest.approx(0.3)
