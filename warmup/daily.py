"""A sending day end to end — what `warmup run` and `warmup demo` do each day.

Order: refuse while an earlier day still has email that running it again would send (a day
is "completed" once its outbox is written, before anything is sent) → run the scenario day
(which first pulls Klaviyo's unsubscribes through the engine's prepare hook) → show the result
→ cancel earlier days' email that Klaviyo held back (an on-hold exclusion row: sent now, it
would reach someone Klaviyo mails too) → drain the outbox, Klaviyo first, then email.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from warmup.consent.pull import pull_for_plan
from warmup.dispatch import (
    DispatchReport,
    cancel_held_email,
    check_earlier_days_sent,
    dispatch_day,
    outbox_progress,
)
from warmup.dispatch.klaviyo import check_list_claims
from warmup.engagement.pull import check_scopes_for_plan, pull_engagement_for_plan
from warmup.engine import DayResult, run_day
from warmup.plan import LoadedPlan
from warmup.store import open_store

ProgressRead = Callable[[], tuple[int, int]]


@dataclass
class DayOutcome:
    result: DayResult
    pulled: int
    dispatch: DispatchReport
    # earlier days' email cancelled because Klaviyo held their customer's exclusion back
    cancelled_held: int = 0


def rehearsal_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and then moves at the real pace: a rehearsal's retries
    (an SMTP 4xx is tried again a few seconds later) fall due as they would in production,
    where a clock frozen at ``start`` would wait for them for ever."""
    offset = start - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


def run_and_dispatch(
    loaded: LoadedPlan,
    day: int,
    *,
    now: datetime | None = None,
    force_reason: str | None = None,
    override_guardrail: str | None = None,
    resend_uncertain: bool = False,
    claim: bool = False,
    on_result: Callable[[DayResult], None] | None = None,
    on_pull: Callable[[int], None] | None = None,
    dispatch_progress: Callable[[ProgressRead], AbstractContextManager[object]] | None = None,
) -> DayOutcome:
    """Run sending day ``day`` and send what it decided. ``on_result`` sees the day's result
    before the dispatch starts, so a provider failure cannot hide what the day did;
    ``dispatch_progress(read)`` wraps the dispatch (``read() -> (finished, total)``)."""
    if force_reason is None:
        with closing(open_store(loaded.store_path, create=False)) as store:
            check_earlier_days_sent(loaded, store, day)
    with closing(open_store(loaded.store_path, create=False)) as store:
        # a list another plan claimed is refused before the day writes anything
        check_list_claims(loaded, store, day, take_over=claim)
    pulled: list[int] = []

    def pull() -> None:
        check_scopes_for_plan(loaded)  # the key's scopes, before the run's first real call
        pulled.append(pull_for_plan(loaded))
        pull_engagement_for_plan(loaded)  # the plan's Klaviyo engagement ranking, if it has one
        if on_pull is not None:
            on_pull(pulled[-1])

    result = run_day(
        loaded,
        day,
        now=now,
        force_reason=force_reason,
        override_guardrail=override_guardrail,
        prepare=pull,
    )
    if on_result is not None:
        on_result(result)

    def read() -> tuple[int, int]:
        # Called from the progress poller's thread: a connection of its own, opened and closed
        # within the call, because sqlite3 objects may only be used (and closed) in the thread
        # that made them.
        with closing(open_store(loaded.store_path, create=False)) as reader:
            return outbox_progress(reader, day)

    with closing(open_store(loaded.store_path, create=False)) as store:
        # the day ran: its dispatch moves the exclusion list on, so what Klaviyo held back
        # on earlier days can no longer be sent safely
        cancelled = cancel_held_email(store, before=day)
        with dispatch_progress(read) if dispatch_progress else nullcontext():
            report = dispatch_day(
                loaded,
                store,
                day,
                resend_uncertain=resend_uncertain,
                clock=rehearsal_clock(now) if now else None,
                claim=claim,
            )
    return DayOutcome(result, sum(pulled), report, cancelled)
