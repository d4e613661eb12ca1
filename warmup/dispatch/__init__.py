"""Dispatch drains the outbox through the providers, exactly once in effect, resumable.

``dispatch_day`` runs Klaviyo first — a customer's email waits for their exclusion-list row to be
confirmed — and then the email dispatcher (``warmup.dispatch.email``) when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from warmup.dispatch.email import EmailReport, drain_email
from warmup.dispatch.klaviyo import KlaviyoReport, drain_klaviyo, klaviyo_backlog
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.store import Store

__all__ = ["DispatchReport", "dispatch_day", "klaviyo_backlog", "outbox_progress"]

FINISHED = ("sent", "bounced", "failed", "on_hold", "uncertain", "cancelled")


def outbox_progress(store: Store, day: int) -> tuple[int, int]:
    """(finished, total) outbox actions of ``day``: what a progress bar shows while the
    dispatchers drain it."""
    marks = ", ".join("?" for _ in FINISHED)
    total, done = store.conn.execute(
        f"SELECT count(*), coalesce(sum(status IN ({marks})), 0) FROM outbox WHERE day = ?",
        (*FINISHED, day),
    ).fetchone()
    return int(done), int(total)


@dataclass
class DispatchReport:
    klaviyo: KlaviyoReport
    email: EmailReport

    def render(self) -> str:
        k, e = self.klaviyo, self.email
        lines = [
            f"klaviyo  {k.sent:,} list changes confirmed, {k.removed:,} removed, "
            f"{k.on_hold:,} on hold, {k.failed:,} failed ({k.requests:,} requests)",
            f"email    {e.sent:,} sent, {e.bounced:,} bounced, {e.failed:,} failed, "
            f"{e.waiting:,} waiting, {e.uncertain:,} uncertain",
        ]
        lines += [f"  ! {problem}" for problem in k.problems]
        lines += [f"  ! {warning}" for warning in e.warnings]
        if e.uncertain:
            lines.append(
                "  uncertain messages may have been delivered before a crash; they are "
                "not re-sent unless you run again with --resend-uncertain"
            )
        return "\n".join(lines)


def dispatch_day(
    loaded: LoadedPlan,
    store: Store,
    day: int,
    *,
    klaviyo_client: KlaviyoClient | None = None,
    resend_uncertain: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> DispatchReport:
    """Klaviyo first (exclusion list confirmed), then the day's due email."""
    klaviyo = drain_klaviyo(loaded, store, day, client=klaviyo_client)
    email = drain_email(loaded, store, day, resend_uncertain=resend_uncertain, clock=clock)
    return DispatchReport(klaviyo, email)
