"""A sending day end to end — the one owner of a day's rules, for `warmup run` (real, outbox
only, dry run) and `warmup demo` alike.

Order: refuse while an earlier day still has email that running it again would send (a day
is "completed" once its outbox is written, before anything is sent) → refuse a Klaviyo list
another plan has claimed → run the scenario day (the engine checks the day order and the
guardrails, then, through its prepare hook, checks the API key's scopes and pulls Klaviyo's
unsubscribes and, when the plan ranks by it, Klaviyo's engagement) → show the result →
cancel earlier days' email that Klaviyo held back (an on-hold exclusion row: sent now, it
would reach someone Klaviyo mails too) → drain the outbox, Klaviyo first, then email.

Which of those a mode applies is written once, in ``Mode``: a dry run changes nothing but says
which gate a real run would refuse at; an outbox-only run (``--no-dispatch``) writes the
outbox and leaves sending, and so the gates that protect sending, to a later real run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from warmup.consent.categories import pull_consent_lists_for_plan
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
from warmup.errors import WarmupError
from warmup.plan import LoadedPlan
from warmup.store import Store, open_store
from warmup.store.lists import KlaviyoLists

ProgressRead = Callable[[], tuple[int, int]]


class Mode(Enum):
    """How much of a day runs; ``gates``/``sends`` say which rules apply."""

    SEND = "send"  # `warmup run`: the whole day
    OUTBOX_ONLY = "outbox-only"  # `--no-dispatch`: allocate and write the outbox, send nothing
    DRY_RUN = "dry-run"  # `--dry-run`: change nothing, report what a real run would do

    @property
    def gates(self) -> bool:
        """Whether the earlier-days-unsent and list-claim gates refuse (a dry run reports
        them instead; an outbox-only run sends nothing, so strands nothing)."""
        return self is Mode.SEND

    @property
    def sends(self) -> bool:
        return self is Mode.SEND


@dataclass
class DayOutcome:
    result: DayResult
    pulled: int
    # None when the mode sends nothing
    dispatch: DispatchReport | None
    # earlier days' email cancelled because Klaviyo held their customer's exclusion back
    cancelled_held: int = 0

    @property
    def failed(self) -> int:
        """Actions that failed: this run's, or Klaviyo changes an earlier run left failed (a run
        does not drive them again; the email waiting for them waits)."""
        if self.dispatch is None:
            return 0
        klaviyo = self.dispatch.klaviyo
        return max(klaviyo.failed, klaviyo.failed_outstanding) + self.dispatch.email.failed

    @property
    def failed_earlier(self) -> int:
        """Klaviyo changes that failed in an earlier run and still stand failed."""
        if self.dispatch is None:
            return 0
        return max(0, self.dispatch.klaviyo.failed_outstanding - self.dispatch.klaviyo.failed)


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
    mode: Mode = Mode.SEND,
    now: datetime | None = None,
    force_reason: str | None = None,
    override_guardrail: str | None = None,
    resend_uncertain: bool = False,
    claim: bool = False,
    on_result: Callable[[DayResult], None] | None = None,
    on_pull: Callable[[int], None] | None = None,
    dispatch_progress: Callable[[ProgressRead], AbstractContextManager[object]] | None = None,
) -> DayOutcome:
    """Run sending day ``day`` in ``mode`` and send what it decided. ``on_result`` sees the
    day's result before the dispatch starts, so a provider failure cannot hide what the day
    did; ``dispatch_progress(read)`` wraps the dispatch (``read() -> (finished, total)``)."""
    if mode is Mode.DRY_RUN:
        result = run_day(
            loaded,
            day,
            now=now,
            dry_run=True,
            force_reason=force_reason,
            override_guardrail=override_guardrail,
        )
        result.notes[:0] = _gate_notes(loaded, day, force_reason=force_reason, claim=claim)
        if on_result is not None:
            on_result(result)
        return DayOutcome(result, 0, None)
    if mode.gates:
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
        pull_consent_lists_for_plan(loaded)  # after the unsubscribes: they reject categories
        # the plan's Klaviyo engagement ranking, if it has one
        pull_engagement_for_plan(loaded, now=now)
        if on_pull is not None:
            on_pull(pulled[-1])

    result = run_day(
        loaded,
        day,
        now=now,
        force_reason=force_reason,
        override_guardrail=override_guardrail,
        prepare=pull if mode.sends else None,
    )
    if on_result is not None:
        on_result(result)
    if not mode.sends:
        return DayOutcome(result, 0, None)

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


def _gate_notes(
    loaded: LoadedPlan, day: int, *, force_reason: str | None, claim: bool
) -> list[str]:
    """The refusals a real run of ``day`` would meet before the engine, said as notes: a dry
    run writes nothing and calls no one, so the list claims are read from what the store and
    the claim registry already know (a list found by name for the first time is not known)."""
    notes: list[str] = []
    with closing(open_store(loaded.store_path, create=False)) as store:
        if force_reason is None:
            try:
                check_earlier_days_sent(loaded, store, day)
            except WarmupError as exc:
                notes.append(f"{exc.message}; a real run would be refused")
        if not claim:
            for list_id in _known_list_ids(loaded, store, day):
                if held := claimed_elsewhere(list_id, store.path):
                    notes.append(
                        f"Klaviyo list {list_id} belongs to plan {held['plan']!r} (store "
                        f"{held['store']}); a real run would be "
                        "refused (pass --claim to take it over knowingly)"
                    )
    return notes


def _known_list_ids(loaded: LoadedPlan, store: Store, day: int) -> list[str]:
    """The ids of the day's exclusion and unsubscribe lists that are known without asking
    Klaviyo: fixed ids, per-day ids, and fixed names the store has already resolved."""
    klaviyo = loaded.plan.providers.klaviyo
    ids: list[str] = []
    for which, ref in (
        ("exclusion", klaviyo.exclusion_list),
        ("unsubscribe", klaviyo.unsubscribe_list),
    ):
        if ref.id:
            ids.append(ref.id)
        elif ref.per_day is not None:
            if day in ref.per_day:
                ids.append(ref.per_day[day])
        elif (
            ref.name
            and "{" not in ref.name
            and (found := KlaviyoLists(store).resolved(f"{which}:{ref.name}"))
        ):
            ids.append(found)
    return list(dict.fromkeys(ids))


def claimed_elsewhere(list_id: str, store_path: Path) -> dict[str, Any] | None:
    """The claim registry's entry for ``list_id`` when another plan's store holds it (the rule
    `warmup.dispatch.claims.check` refuses by), else None."""
    from warmup.dispatch import claims

    return claims.held_by_another(list_id, store_path)
