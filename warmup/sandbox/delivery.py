"""One background thread delivering a provider sandbox's signed events in order (SNS messages,
SendGrid Event Webhook batches), and a way to wait until every queued one was delivered or
given up: tests and the demo read the store only after that."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

T = TypeVar("T")


class Deliveries(Generic[T]):
    def __init__(self, deliver: Callable[[httpx.Client, T], None], name: str) -> None:
        self._deliver = deliver
        self._name = name
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue()
        self._idle = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> None:
        with self._idle:
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
                self._thread.start()
        self._queue.put((item,))

    def wait(self, timeout: float) -> bool:
        """True once every queued item was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while True:
                entry = self._queue.get()
                if entry is None:
                    return
                try:
                    self._deliver(client, entry[0])
                finally:
                    with self._idle:
                        self._busy -= 1
                        self._idle.notify_all()
