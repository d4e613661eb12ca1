"""A background thread that runs the consent flow soon after each unsubscribe or complaint.

The HTTP handler only stores the event and calls :meth:`FlowWorker.notify`, so a one-click
unsubscribe answers at once while Klaviyo is updated within seconds. Unsubscribes that arrive
while a flow runs are taken by the next pass; a failed pass (Klaviyo down) is retried every
``retry_seconds`` until the backlog is empty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from warmup.consent.flow import FlowReport, run_consent_flow
from warmup.events import unsubscribe_backlog
from warmup.plan import LoadedPlan
from warmup.store import Store, open_store

log = logging.getLogger(__name__)

FlowRunner = Callable[[LoadedPlan, Store], FlowReport]


class FlowWorker:
    def __init__(
        self, loaded: LoadedPlan, *, retry_seconds: float = 5.0, run: FlowRunner = run_consent_flow
    ) -> None:
        self.loaded = loaded
        self.retry_seconds = retry_seconds
        self._run = run
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="warmup-consent-flow", daemon=True)
        self._thread.start()
        # Unsubscribes stored while the service was down go through now.
        self.notify()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        store = open_store(self.loaded.store_path)
        try:
            while not self._stop.is_set():
                woken = self._wake.wait(self.retry_seconds)
                self._wake.clear()
                if self._stop.is_set():
                    break
                if not woken and unsubscribe_backlog(store).count == 0:
                    continue
                self._pass(store)
        finally:
            store.close()

    def _pass(self, store: Store) -> None:
        try:
            report = self._run(self.loaded, store)
            self.last_error = report.klaviyo_error
        except Exception as exc:  # the service keeps serving; the next pass retries
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "consent flow failed (retrying in %.0fs): %s", self.retry_seconds, self.last_error
            )
        finally:
            self.passes += 1
