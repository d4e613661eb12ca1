"""The email drain for providers that take many messages per request (SendGrid).

Same rows, same states and the same once-and-only-once rules as :mod:`warmup.dispatch.email`;
only the hand-over differs: a worker takes up to the provider's ``batch_size`` due rows, builds
their messages, and right before each request the provider calls ``commit`` for that request's
messages, which claims their rows (``sending``) in one transaction. Outcomes are recorded per
message: accepted rows become ``sent`` together in one transaction, per-message errors go
through the same mapping as a single send (bounce, rejection, retry, uncertain).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from typing import Any

from warmup.dispatch.email import EmailDrain, _iso
from warmup.errors import (
    DeliveryError,
    NotSentDeliveryError,
    PermanentDeliveryError,
    TemplateError,
)
from warmup.providers.base import BatchSession, OutgoingEmail
from warmup.store.outbox import FAILED

# How long a worker waits for more due rows before sending a part-filled batch.
_GATHER_SECONDS = 0.05


class BatchDrain(EmailDrain):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batch_size = max(1, int(getattr(self.provider, "batch_size", 1)))

    def claim_many(self, ids: Sequence[int]) -> list[bool]:
        with self.writer.use() as outbox:
            return outbox.claim_email_batch(ids, _iso(self.clock()), self.sendable)

    def sent_many(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.writer.use() as outbox:
            outbox.sent_email_batch([row["id"] for row in rows], _iso(self.clock()))
        with self.counter_lock:
            self.report.sent += len(rows)

    def deliver_batch(self, session: BatchSession, rows: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        built: list[tuple[dict[str, Any], OutgoingEmail]] = []
        for row in rows:
            try:
                built.append((row, self.build(row)))
            except (TemplateError, PermanentDeliveryError) as exc:
                self.finish(row, FAILED, exc.render())
        if not built:
            return
        rendered_at = time.perf_counter()
        for _ in built:
            if self.window is not None:
                self.window.wait()
            self.pacer.wait()
        paced_at = time.perf_counter()
        by_key = {message.key: row for row, message in built}

        def commit(messages: Sequence[OutgoingEmail]) -> Sequence[bool]:
            return self.claim_many([by_key[m.key]["id"] for m in messages])

        stop: NotSentDeliveryError | None = None
        try:
            outcomes = session.send_batch([message for _, message in built], commit)
            accepted, unsent = [], []
            for (row, message), outcome in zip(built, outcomes, strict=True):
                if outcome is True:
                    accepted.append(row)
                elif isinstance(outcome, NotSentDeliveryError):
                    unsent.append(row)
                    stop = stop or outcome
                elif isinstance(outcome, DeliveryError):
                    self.settle(row, message, outcome)
            if accepted:
                self.sent_many(accepted)
            if unsent:
                self.unclaim(unsent)
        finally:
            finished = time.perf_counter()
            with self.counter_lock:
                self.report.render_seconds += rendered_at - started
                self.report.wire_seconds += finished - paced_at
        if stop is not None:
            raise stop

    def unclaim(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows whose request was refused as a whole: certainly not sent, pending again."""
        with self.writer.use() as outbox:
            outbox.unclaim_email([row["id"] for row in rows], _iso(self.clock()))

    def worker(self, tasks: queue.Queue[dict[str, Any] | None]) -> None:
        session = self.provider.open_session()
        if not isinstance(session, BatchSession):
            raise TypeError(f"{self.provider.name} sessions do not send batches")
        try:
            stop = False
            while not stop:
                first = tasks.get()
                rows: list[dict[str, Any]] = []
                if first is None:
                    stop = True
                else:
                    rows.append(first)
                while rows and len(rows) < self.batch_size:
                    try:
                        item = tasks.get(timeout=_GATHER_SECONDS)
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    rows.append(item)
                try:
                    if rows and self.fatal is None:
                        self.deliver_batch(session, rows)
                except BaseException as exc:  # the drain stops; the main thread re-raises
                    self.fatal = self.fatal or exc
                finally:
                    for _ in range(len(rows) + (1 if stop else 0)):
                        tasks.task_done()
        finally:
            session.close()
            self.writer.release()
