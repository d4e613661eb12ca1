"""Dispatch drains the outbox through the providers, exactly once in effect, resumable.

``dispatch_day`` runs Klaviyo first — a customer's email waits for their exclusion-list row to be
confirmed — and then the email dispatcher (``warmup.dispatch.email``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warmup.dispatch.email import EmailReport, drain_email
from warmup.dispatch.klaviyo import KlaviyoReport, drain_klaviyo, not_begun
from warmup.errors import DayOrderError
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.store import Store, open_store
from warmup.store.outbox import Outbox

__all__ = [
    "DispatchReport",
    "cancel_held_email",
    "check_earlier_days_sent",
    "dispatch_day",
    "outbox_progress",
]


# The two outbox operations `warmup run` calls around a day's dispatch, under the names its
# callers import from here; the store owns them (warmup.store.outbox.Outbox).
def outbox_progress(store: Store, day: int) -> tuple[int, int]:
    """(finished, total) outbox actions of ``day``: what a progress bar shows while the
    dispatchers drain it."""
    return Outbox(store).progress(day)


def cancel_held_email(store: Store, before: int) -> int:
    """Cancel earlier days' email still held back by an on-hold Klaviyo row, as day ``before``
    starts: once the exclusion list has moved on to a later day, sending it would reach a
    customer Klaviyo mails too. The reason stays on the row."""
    return Outbox(store).cancel_held_email(before)


@dataclass
class DispatchReport:
    klaviyo: KlaviyoReport
    email: EmailReport

    def to_json(self) -> dict[str, Any]:
        """What `warmup run --json` adds under ``dispatch``: the counts `render` prints."""
        k, e = self.klaviyo, self.email
        return {
            "klaviyo": {
                "confirmed": k.sent,
                "removed": k.removed,
                "on_hold": k.on_hold,
                "failed": k.failed,
                "requests": k.requests,
                "requests_readback": k.requests_readback,
                "requests_repair": k.requests_repair,
                "dead_ids": k.dead_ids,
                "come_back_at": k.come_back_at,
                "problems": list(k.problems),
            },
            "email": {
                "sent": e.sent,
                "bounced": e.bounced,
                "failed": e.failed,
                "waiting": e.waiting,
                "uncertain": e.uncertain,
                "cancelled": e.cancelled,
                "warnings": list(e.warnings),
            },
        }

    def render(self) -> str:
        k, e = self.klaviyo, self.email
        lines = [
            f"klaviyo  {k.sent:,} list changes read back from Klaviyo, {k.removed:,} removed, "
            f"{k.on_hold:,} on hold, {k.failed:,} failed ({k.requests:,} requests, "
            f"{k.requests_readback:,} of them reading the lists back)"
            + (
                f"; {k.requests_repair:,} import(s) joined unseen customers again by email"
                if k.requests_repair
                else ""
            ),
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
    claim: bool = False,
) -> DispatchReport:
    """Klaviyo's list changes and the day's due email, streamed: a customer's email goes as
    soon as their email has been read back from the exclusion list, while later pages are
    still being read (the email row waits for its Klaviyo row to be ``sent``)."""
    now = clock() if clock else None
    if not_begun(loaded, store, day, now) is not None:
        # the day has not begun: no exclusion change, nothing of it may reach anyone yet
        early = drain_klaviyo(loaded, store, day, client=klaviyo_client, now=now, claim=claim)
        return DispatchReport(early, EmailReport(day))
    outcome: list[KlaviyoReport] = []
    failure: list[BaseException] = []

    def klaviyo_side() -> None:
        try:
            with closing(open_store(store.path, create=False)) as own:
                outcome.append(
                    drain_klaviyo(loaded, own, day, client=klaviyo_client, now=now, claim=claim)
                )
        except BaseException as exc:  # re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=klaviyo_side, name="klaviyo-drain", daemon=True)
    thread.start()
    try:
        email = drain_email(
            loaded,
            store,
            day,
            resend_uncertain=resend_uncertain,
            clock=clock,
            more=thread.is_alive,
        )
    finally:
        thread.join()
    if failure:
        raise failure[0]
    outcome[0].failed_outstanding = Outbox(store).failed_list_changes(day)
    return DispatchReport(outcome[0], email)


def check_earlier_days_sent(loaded: LoadedPlan, store: Store, day: int) -> None:
    """Refuse to run ``day`` while an earlier day's email is still to be sent: once a later day
    has run, nothing would send it (and the exclusion list has moved on)."""
    unsent = Outbox(store).unsent_email(before=day)
    if unsent:
        first = min(unsent)
        raise DayOrderError(
            f"day {day} cannot run before day {first} has sent its email "
            f"({unsent[first]:,} not sent yet)",
            hint=f"run `warmup run {loaded.path} --day {first}` again to send it, or pass "
            '--force "reason" to leave it unsent',
        )
