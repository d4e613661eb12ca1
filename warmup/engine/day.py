"""One plan day, start to finish: ``DayRun.run`` reads like the manual.

1. load      — check the day order, fix the day's date, take in pending events;
2. evaluate  — every customer's path through the graph (SQL, set-at-a-time), and the
               allocation ranking once every wait in front of it is due;
3. allocate  — freeze allocations and journeys in one transaction (a re-run reuses them);
4. outbox    — write the webhook/email/consent actions customers have reached by now;
5. finalize  — always: record the day's status and the run, drop the temp tables.

A kill at any point leaves whole transactions only; running the day again carries on with no
duplicate (outbox keys) and no gap (frozen allocation, actions re-derived from journeys).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime

from warmup import clock
from warmup.clock import show
from warmup.engagement.dry_run import klaviyo_day
from warmup.engine.actions import write_actions
from warmup.engine.context import DayContext
from warmup.engine.evaluate import Evaluation, drop_temp, evaluate, prepare
from warmup.engine.events import process_events
from warmup.engine.funnel import count_nodes, draw_tree
from warmup.engine.journeys import final_paths, load_frozen, persist, refresh_states
from warmup.engine.preview import NewSet, list_changes, samples
from warmup.engine.result import DayResult
from warmup.errors import DayOrderError, InvalidInput
from warmup.guardrails import check_guardrails, evaluate_guardrails
from warmup.mailboxes.allocation import group_report
from warmup.mailboxes.cache import Refresh, refresh_mx
from warmup.plan import LoadedPlan
from warmup.plan.calendar import (
    dates_after,
    day_date,
    local_date,
    local_time,
    occupied_until,
    require_day,
)
from warmup.store import Store, days, now_iso, open_store
from warmup.store.outbox import Outbox
from warmup.wallclock import say, shifted_times

log = logging.getLogger("warmup.engine")


class DayRun:
    def __init__(
        self,
        loaded: LoadedPlan,
        store: Store,
        day: int,
        *,
        now: datetime | None,
        dry_run: bool,
        force_reason: str | None,
        override_guardrail: str | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        self.loaded = loaded
        self.prepare = prepare
        self.store = store
        self.day = day
        self.clock = now or clock.now()
        # A dry run at a given clock previews what a real run at that clock would do; without
        # one it previews the whole day as if every wait were due.
        self.at_clock = now is not None
        self.dry_run = dry_run
        self.force_reason = force_reason
        self.override_guardrail = override_guardrail
        self.completed_before = False
        self.frozen = False
        # This run froze the allocation itself: its temp tables hold what it just wrote.
        self.froze_now = False
        self.run_id: int | None = None
        self.mx = Refresh()
        self.ctx: DayContext
        self.ev: Evaluation
        self.result: DayResult

    def run(self) -> DayResult:
        outcome = "failed"
        try:
            self.load()
            if self.prepare is not None and not self.dry_run:
                # e.g. pull Klaviyo's unsubscribes: after the day's checks, before evaluation
                self.prepare()
            self.evaluate()
            self.allocate()
            self.write_outbox()
            self.report()
            outcome = self.result.status
            return self.result
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        finally:
            self.finalize(outcome)

    # 1. load ---------------------------------------------------------------------------
    def load(self) -> None:
        plan = self.loaded.plan
        require_day(plan, self.day)
        conn = self.store.backend
        rows = days.states(conn)
        row = rows.get(self.day)
        self.completed_before = row is not None and row.status == days.COMPLETED
        self.frozen = row is not None and row.frozen
        notes = self._check_order(rows) if row is None else []
        when = (
            date.fromisoformat(row.date)
            if row is not None
            else day_date(plan, self.day, self._anchors(rows))
        )
        self._check_local_times(when)
        self.ctx = DayContext(
            self.loaded,
            conn,
            self.day,
            when,
            local_time(plan, when),
            # A completed day is read whole, whatever the clock: a run then does nothing new,
            # so neither may its preview stop at a wait that is long over.
            None if self.completed_before or (self.dry_run and not self.at_clock) else self.clock,
            self.dry_run,
        )
        self.result = DayResult(
            plan.name,
            self.day,
            when.isoformat(),
            self.dry_run,
            already_completed=self.completed_before,
            notes=notes,
        )
        if row is None:
            self._late_note(when, rows)
        log.info(
            "load: %s day %s (%s)%s", plan.name, self.day, when, " dry run" if self.dry_run else ""
        )
        if not self.completed_before and not self.frozen:
            self._guardrails()
        if self.dry_run or self.completed_before:
            return
        process_events(self.loaded, self.store, self.clock)
        self._record_start(when, first=row is None)

    def _check_order(self, rows: dict[int, days.DayState]) -> list[str]:
        """A first run of a day needs the day before it completed: refuse (a real run without
        --force) or say so (a dry run)."""
        prev = rows.get(self.day - 1)
        if self.day == 1 or (prev is not None and prev.status == days.COMPLETED):
            return []
        state = "not started" if prev is None else prev.status
        message = (
            f"day {self.day} cannot run before day {self.day - 1} has completed "
            f"(day {self.day - 1} is {state})"
        )
        if self.dry_run:
            return [message + "; a real run would be refused"]
        if self.force_reason is None:
            raise DayOrderError(
                message,
                hint=f"run `warmup run {self.loaded.path} "
                f"--day {self.day - 1}` first, or pass --force "
                '"reason" to run it anyway',
            )
        return []

    def _record_start(self, when: date, *, first: bool) -> None:
        """The day is running, with this run's row (one transaction)."""
        conn = self.store.backend
        with self.store.backend.transaction():
            if first:
                days.start(
                    conn,
                    self.day,
                    when.isoformat(),
                    started_at=now_iso(self.clock),  # a rehearsal's clock, as completed_at
                    forced_reason=self.force_reason,
                )
            else:
                days.restart(conn, self.day, forced_reason=self.force_reason)
            if not self.frozen:
                days.set_volume(
                    conn,
                    self.day,
                    volume_day=self.ctx.volume_day,
                    override=self.override_guardrail,
                )
            self.run_id = days.add_run(
                conn, self.day, started_at=now_iso(), pid=os.getpid(), argv=" ".join(sys.argv[1:])
            )

    def _guardrails(self) -> None:
        """Bounce/complaint figures of earlier days: proceed, hold (an earlier day's volume) or
        refuse a rollback unless overridden (warmup.guardrails)."""
        if self.dry_run:
            decision = evaluate_guardrails(self.loaded, self.store, self.day)
        else:
            decision = check_guardrails(
                self.loaded, self.store, self.day, override_reason=self.override_guardrail
            )
        self.ctx.volume_day = decision.volume_day if decision.volume_day != self.day else None
        # A dry run also shows what the relative lines compared, so a team sees them work.
        relative = self.dry_run and self.loaded.plan.guardrails.relative is not None
        if decision.action != "proceed" or self.ctx.volume_day is not None or relative:
            note = decision.describe(self.day)
            if self.dry_run and decision.action == "rollback" and not self.override_guardrail:
                note += "\n  a real run would be refused"
            self.result.notes.append(note)
        log.info("load: guardrails %s, volume of day %s", decision.action, decision.volume_day)

    def _check_local_times(self, when: date) -> None:
        """Refuse before anything is recorded when the clocks skip or repeat one of the day's
        local times and the plan chose no reading (a held-back day can land on such a night)."""
        plan = self.loaded.plan
        if plan.schedule.clock_change is not None:
            return
        nights = shifted_times(self.loaded, {self.day: when})
        if not nights:
            return
        night = nights[0]
        planned = day_date(plan, self.day)
        where = (
            f"day {self.day} was planned for {planned.isoformat()} and moved to "
            f"{when.isoformat()} because an earlier day ran late, so `warmup validate` (which "
            "checks the planned dates) cannot see it; `warmup status` lists every such night "
            "of the dates the days take now"
            if when != planned
            else "`warmup validate` lists every such day"
        )
        raise InvalidInput(
            f"day {self.day} ({when.isoformat()}): {night.what} {night.wall.describe()}",
            hint=f"add `clock_change: earlier` or `later` under the plan's `schedule:` "
            f"({night.wall.readings()}), or choose another time for day {self.day}; {where}",
        )

    def _late_note(self, when: date, rows: dict[int, days.DayState]) -> None:
        """A day first run after its date: say so, and which dates the later days now take."""
        plan = self.loaded.plan
        today = local_date(plan, self.clock)
        if when >= today:
            return
        moved = dates_after(plan, self.day, self._anchors(rows), today)
        later = ", ".join(f"day {n} {on.isoformat()}" for n, on in moved.items())
        # A day pushed onto a clock-change night: say so now, not when its run refuses it.
        nights = [say(s, plan.schedule.clock_change) for s in shifted_times(self.loaded, moved)]
        late = (today - when).days
        try:
            send = show(
                local_time(plan, when, plan.schedule.send_time_for(self.day)), plan.timezone
            )
        except InvalidInput:  # a send time the scenario never waits for may be unresolved
            send = plan.schedule.send_time_for(self.day)
        self.result.notes.append(
            f"the plan is late: day {self.day} was planned for {when.isoformat()}, "
            f"{late} day{'s' if late != 1 else ''} before today ({today.isoformat()} in "
            f"{plan.timezone}); its send time {send} has passed, so it "
            "mails as soon as its customers are allocated and listed"
            + (f"; the days after it move along: {later}" if later else "")
            + "".join(f"; on a clock change now: {night}" for night in nights)
        )

    def _anchors(self, rows: dict[int, days.DayState]) -> dict[int, date]:
        """Earlier days' last dates: a day that completed after its date pushes the rest."""
        anchors: dict[int, date] = {}
        for number, row in rows.items():
            if number >= self.day:
                continue
            anchors[number] = occupied_until(
                self.loaded.plan, date.fromisoformat(row.date), row.completed_at
            )
        return anchors

    # 2. evaluate -----------------------------------------------------------------------
    def evaluate(self) -> None:
        self.ev = prepare(self.ctx)
        if self.frozen:
            load_frozen(self.ctx, self.ev)
            log.info("evaluate: day %s allocation is frozen; reusing it", self.day)
        elif not self.ctx.reached(self.ctx.start):
            log.info(
                "evaluate: day %s starts at %s; nothing to do yet",
                self.day,
                show(self.ctx.start, self.ctx.plan.timezone),
            )
        elif self.dry_run:
            self.mx = refresh_mx(self.ctx.plan, self.store.backend)
            evaluate(self.ctx, self.ev)
        else:
            # MX lookups of new company domains first, in their own transaction (the network
            # is never waited on while the day's allocation holds the store's write lock).
            with self.store.backend.transaction():
                self.mx = refresh_mx(self.ctx.plan, self.store.backend)
            # Evaluate and freeze in one write transaction: nothing changes in between. Every
            # journey and allocation is a customer the evaluation read in it.
            with self.store.backend.derived_writes_transaction():
                evaluate(self.ctx, self.ev)
                self.allocate()

    # 3. allocate -----------------------------------------------------------------------
    def allocate(self) -> None:
        if (
            self.frozen
            or self.dry_run
            or not self.ctx.reached(self.ctx.start)
            or not self.ev.resolved
        ):
            return
        persist(self.ctx, self.ev)
        self.frozen = True
        self.froze_now = True
        log.info("allocate: day %s frozen", self.day)

    # 4. outbox -------------------------------------------------------------------------
    def write_outbox(self) -> None:
        if self.dry_run or self.completed_before or not self.frozen:
            return
        # the actions' customers are the frozen journeys' (read in the same transaction)
        with self.store.backend.derived_writes_transaction():
            self.result.outbox = write_actions(
                self.ctx, self.ev.flow, self.ev.timeline, final_paths(self.ev), now_iso()
            )
            if not self.froze_now:
                # A re-run moves parked customers on; journeys frozen by this run were written
                # at this run's clock already (each UPDATE would scan the day to change none).
                refresh_states(self.ctx, self.ev)
        log.info("outbox: day %s wrote %s rows", self.day, sum(self.result.outbox.values()))

    # 5. report and finalize -------------------------------------------------------------
    def report(self) -> None:
        ctx, ev, result = self.ctx, self.ev, self.result
        due = self._next_due()
        result.status = "waiting" if due is not None else "completed"
        result.due_at = due
        counts = count_nodes(ctx, ev)
        result.funnel = [counts[n.id] for n in ctx.loaded.scenario.nodes]
        result.tree = draw_tree(ctx.loaded.scenario, counts, ctx.plan.timezone)
        if ev.allocated:
            new = ev.new
            result.allocation = {
                "volume": ctx.settings.new,
                "eligible": ev.eligible,
                "limit": ev.limit,
                "new": new,
                "klaviyo": ev.eligible - new,
            }
            result.allocation.update(group_report(ev.groups, self.mx, result.notes))
            # Frozen by this run: the evaluation's own table holds the same set (allocations and
            # journeys were written from it), without joining the two per customer.
            new_set = NewSet(ctx, frozen=self.frozen and not self.froze_now)
            result.list_changes = list_changes(ctx, new_set)
            if not self.completed_before:
                # issue 17: engagement, the day's Klaviyo work against the send time, limits
                result.klaviyo_work = klaviyo_day(ctx, new_set.figures, result.list_changes)
            result.samples, result.webhook = samples(ctx, new_set)
        if due is not None:
            result.notes.append(self._waiting_note(due))
        if self.completed_before:
            # the day's decisions stand; its unsent email may still go out after this note
            unsent = Outbox(self.store).unsent_email_of_day(self.day)
            if unsent:
                # an earlier run was stopped while sending: `status` shows the day as sending
                result.notes.append(
                    f"day {self.day}'s allocation was done earlier and kept as it was; "
                    f"{unsent:,} of its emails are still to send"
                )
            else:
                result.notes.append(
                    f"day {self.day} had already completed; its allocation and outbox were "
                    "kept as they were"
                )
        elif self.dry_run and not self.at_clock and self.clock < ctx.start:
            result.notes.append(
                f"this previews the whole day; it starts at {show(ctx.start, ctx.plan.timezone)} "
                "and a real run before then waits (--now previews a run at a given clock)"
            )

    def _waiting_note(self, due: str) -> str:
        tz = self.ctx.plan.timezone
        again = f"`warmup run {self.loaded.path} --day {self.day}`"
        if not self.ctx.reached(self.ctx.start):
            note = (
                f"day {self.day} starts at {show(due, tz)}: nothing is allocated, listed or "
                f"mailed before then; run {again} again then"
            )
        else:
            note = f"customers are parked until {show(due, tz)}: run {again} again then"
        if self.dry_run:
            note = (
                f"at {show(self.clock, tz)} a real run would stop here — {note} (a dry run "
                "without --now previews the whole day)"
            )
        return note

    def _next_due(self) -> str | None:
        ctx, ev = self.ctx, self.ev
        if not ctx.reached(ctx.start):
            return now_iso(ctx.start)
        if not ev.resolved:
            return now_iso(ev.timeline.allocation_at or ctx.start)
        pending = [
            moment
            for path_id, count in ev.counts.items()
            if count
            for pair in ev.timeline.times(ev.flow.paths[path_id])
            for moment in pair
            if not ctx.reached(moment)
        ]
        return now_iso(min(pending)) if pending else None

    def finalize(self, outcome: str) -> None:
        if hasattr(self, "ctx"):
            drop_temp(self.ctx)
        if self.dry_run or self.completed_before or self.run_id is None:
            return
        conn = self.store.backend
        with self.store.backend.transaction():
            if outcome in ("completed", "waiting"):
                done = now_iso(self.clock) if outcome == "completed" else None
                days.finish(conn, self.day, outcome, done)
            elif outcome == "interrupted":
                # Ctrl-C: the day stays `running` with no lock holder, which `status` reads as
                # "interrupted; run it again" (as after a crash), not as a failure to fix.
                pass
            else:
                # Nothing runs any more: say so, rather than leave the day looking busy.
                days.fail_if_running(conn, self.day)
            days.finish_run(conn, self.run_id, finished_at=now_iso(), outcome=outcome)
        log.info("finalize: day %s %s", self.day, outcome)


def run_day(
    loaded: LoadedPlan,
    day: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    force_reason: str | None = None,
    override_guardrail: str | None = None,
    prepare: Callable[[], object] | None = None,
) -> DayResult:
    """Run (or dry-run) sending day ``day`` of a plan over its store.

    A dry run changes nothing: everything it computes lives in temp tables of a transaction
    that is rolled back. A real run holds the plan's ``run`` lock. ``prepare`` runs once the
    day may run and before customers are evaluated (not in dry runs): the caller's hook for
    refreshing the store from outside, such as pulling Klaviyo's unsubscribes.
    """
    store = open_store(loaded.store_path, create=False)
    try:
        if dry_run:
            store.backend.execute("BEGIN")
            try:
                return DayRun(
                    loaded,
                    store,
                    day,
                    now=now,
                    dry_run=True,
                    force_reason=force_reason,
                    override_guardrail=override_guardrail,
                ).run()
            finally:
                store.backend.execute("ROLLBACK")
        with store.lock("run"):
            return DayRun(
                loaded,
                store,
                day,
                now=now,
                dry_run=False,
                force_reason=force_reason,
                override_guardrail=override_guardrail,
                prepare=prepare,
            ).run()
    finally:
        store.close()
