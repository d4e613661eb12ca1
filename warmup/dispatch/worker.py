"""``warmup worker``: one of any number of processes, on any hosts, draining the email outbox of
a plan whose store they share (PostgreSQL, or one SQLite file on one host).

A worker is the email drain (dispatch/email.py: rendering, the provider's sessions, retries,
hard bounces) with two things changed: rows come from leases (store/leases.py) instead of one
process's scan under the ``dispatch-email`` lock, and the plan's send rate is a budget in the
database (store/budget.py) that all workers draw from, so N workers send at the plan's rate,
not N times it. A killed worker's leased rows go to another once the lease passes; a message it
was handing over becomes ``uncertain`` (not re-sent), as after a killed ``warmup run``.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from warmup.dispatch.email import (
    EmailDrain,
    EmailReport,
    RetryPolicy,
    note_throttling,
    provider_for,
)
from warmup.email import pacing
from warmup.email.render import CUSTOMER_FIELDS
from warmup.email.tokens import unsubscribe_secret
from warmup.plan import LoadedPlan
from warmup.providers.base import Provider
from warmup.providers.file import FileProvider
from warmup.store import Store
from warmup.store.budget import Backoff, SendBudget
from warmup.store.leases import EmailLeases
from warmup.store.outbox import Outbox

DEFAULT_LEASE_SECONDS = 30.0
POLL_SECONDS = 1.0


def worker_name() -> str:
    """Names a worker in the rows it leases: host, pid and a nonce (pids repeat across hosts
    and restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _precise(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class LeasedDrain(EmailDrain):
    """An :class:`EmailDrain` whose rows are leased, sharing the send rate through the store."""

    def __init__(
        self,
        *args: Any,
        worker: str,
        lease_seconds: float,
        budget: SendBudget,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.leases = EmailLeases(self.store, worker)
        self.lease = timedelta(seconds=lease_seconds)
        self.budget = budget
        # a sender thread saw a throttled answer: the store-reading thread slows the shared
        # budget before its next grant (this connection is that thread's alone)
        self.throttle_seen = threading.Event()
        # Rows are leased a few at a time: enough to keep every connection busy, few enough
        # that a dead worker's lease holds back little.
        self.lease_batch = 2 * max(1, self.provider.max_connections)
        # A hand-over may take as long as the provider's timeout allows (a server slow to
        # answer DATA: the socket timeout applies to each step, so twice it, and a margin).
        # The `sending` row's lease covers that, or this worker's own lease loop, or a peer's,
        # would take the message in flight for a dead worker's and mark it uncertain.
        timeout = getattr(self.loaded.plan.providers.new, "timeout_seconds", None) or 0.0
        self.handover = max(self.lease, timedelta(seconds=2 * float(timeout) + 5.0))

    def _now(self) -> datetime:
        # The drain's clock: the real one, or a rehearsal's (`warmup worker --now`), which
        # moves at the real pace so leases still pass.
        return self.clock()

    def recover(self) -> None:
        """Only rows whose worker's lease passed: other workers are alive and sending."""
        expired = self.leases.expire(now=_precise(self._now()))
        self.report.recovered_uncertain += expired
        if expired:
            self.report.warnings.append(
                f"{expired} email(s) were mid-delivery when their worker stopped; marked "
                "uncertain and not re-sent (use --resend-uncertain to send)"
            )

    def cancel_withdrawn(self) -> None:
        self.report.cancelled += self.leases.cancel_withdrawn(self.day, now=_precise(self._now()))

    def due_rows(self) -> Iterator[dict[str, Any]]:
        while True:
            self.recover()
            now = self._now()
            rows = self.leases.lease(
                self.day,
                self.sendable,
                CUSTOMER_FIELDS,
                now=_precise(now),
                until=_precise(now + self.lease),
                limit=self.lease_batch,
            )
            if not rows:
                return
            for row in rows:
                # The budget is drawn here, on the one thread that talks to this store
                # connection; the provider's own pacer still spaces the sends it allows.
                if self.throttle_seen.is_set():
                    self.throttle_seen.clear()
                    self.budget.slow_down()
                self.budget.wait()
                yield row

    def throttled(self) -> bool:
        """Slow this worker's pacer and, through the store, every worker's shared budget."""
        self.throttle_seen.set()
        return super().throttled()

    def claim(self, row_id: int) -> bool:
        now = self._now()
        with self.writer.use() as outbox:
            return EmailLeases(outbox.store, self.leases.worker).claim(
                row_id,
                now=_precise(now),
                until=_precise(now + self.handover),
                sendable=self.sendable,
            )

    def next_retry_in(self) -> float | None:
        """A retry falling due, or another worker's lease ending (it may have died)."""
        waits = [w for w in (super().next_retry_in(), self._lease_wait()) if w is not None]
        return min(waits) if waits else None

    def _lease_wait(self) -> float | None:
        end = self.leases.next_lease_end(self.day)
        if end is None:
            return None
        ends = datetime.fromisoformat(end)
        # Look again a moment past the lease's end (its worker died), or within a second:
        # usually its worker finishes the rows, and this one can stop as soon as the day is done.
        return min(max(0.0, (ends - self._now()).total_seconds()) + 0.05, POLL_SECONDS)


@dataclass
class WorkerReport:
    worker: str
    days: list[EmailReport] = field(default_factory=list)


def run_worker(
    loaded: LoadedPlan,
    store: Store,
    *,
    day: int | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    resend_uncertain: bool = False,
    provider: Provider | None = None,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
) -> WorkerReport:
    """Drain ``day``'s email rows (default: every day with email still to send, oldest
    first) alongside any other workers, until none is left for any of them."""
    chosen = provider or provider_for(loaded)
    secret = unsubscribe_secret(
        loaded.plan.unsubscribe.secret_env,
        rehearsal=isinstance(chosen, FileProvider),
        store_path=loaded.store_path,
        env=loaded.env,
    )
    name = worker_name()
    budget = SendBudget(
        store,
        f"email:{loaded.plan.name}",
        chosen.rate_per_second,
        backoff=Backoff(
            floor=pacing.FLOOR,
            recovery=pacing.RECOVERY,
            quiet=pacing.QUIET_SECONDS,
            same_burst=pacing.SAME_BURST_SECONDS,
        ),
    )
    report = WorkerReport(name)
    days = [day] if day is not None else sorted(Outbox(store).unsent_email())
    for each in days:
        drain = LeasedDrain(
            loaded,
            store,
            each,
            chosen,
            secret,
            resend_uncertain,
            retry or RetryPolicy(),
            clock or (lambda: datetime.now(UTC)),
            worker=name,
            lease_seconds=lease_seconds,
            budget=budget,
        )
        done = drain.run()
        note_throttling(done, drain)
        report.days.append(done)
    return report
