"""The Klaviyo drain: a day's (and earlier days' unfinished) list changes, grouped by list and
template, sent in batches and read back before any counts as sent; then the exclusion list is
cut back to the days that still own it."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from warmup.dispatch.klaviyo.cut import cut_exclusion
from warmup.dispatch.klaviyo.readback import confirm
from warmup.dispatch.klaviyo.report import KlaviyoReport
from warmup.dispatch.klaviyo.resolve import client_for, is_per_day, resolve_list
from warmup.dispatch.klaviyo.send import ADD_TEMPLATE, send_all
from warmup.dispatch.klaviyo.window import not_begun
from warmup.errors import KlaviyoError
from warmup.plan import LoadedPlan, properties
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.request import webhook_request
from warmup.store import Store, customers, days, now_iso
from warmup.store.lists import KlaviyoLists
from warmup.store.outbox import (
    FAILED,
    ON_HOLD,
    PENDING,
    SENDING,
    SENT,
    ListChange,
    Outbox,
)

log = logging.getLogger(__name__)
LOCK_NAME = "dispatch-klaviyo"
# Rows drained (sent, then read back) per page: a multiple of the read-back's 100 emails a
# request and of the usual batch sizes, so whole pages cost no extra request.
DRAIN_PAGE = 10_000


class ListChangeDrain:
    """One drain of the outbox's Klaviyo list changes, and what it has learnt on the way."""

    def __init__(
        self,
        loaded: LoadedPlan,
        store: Store,
        day: int,
        client: KlaviyoClient,
        report: KlaviyoReport,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.outbox = Outbox(store)
        self.lists = KlaviyoLists(store)
        self.day = day
        self.client = client
        self.report = report
        self.settings = loaded.plan.providers.klaviyo
        self.now = datetime.now(UTC)
        self.which: str | None = None
        # Acknowledged by Klaviyo (204, job complete) but not yet read back, per list.
        self.acked: dict[str, list[ListChange]] = defaultdict(list)
        self.verified: set[int] = set()
        # Klaviyo's own reason a row's profile could not join (import errors by pointer).
        self.reasons: dict[int, str] = {}
        # --claim: take over a list another plan's store has claimed
        self.take_over = False
        # each list's members before this run (``skip_confirmed``)
        self.members: dict[str, set[int]] = {}

    # outbox rows ----------------------------------------------------------------------------
    def rows(self, retry_held: bool, after: int = 0, limit: int | None = None) -> list[ListChange]:
        """The drainable rows with an id above ``after``, in id order, at most ``limit``."""
        statuses = [PENDING, SENDING] + ([FAILED, ON_HOLD] if retry_held else [])
        found = self.outbox.list_changes(self.day, statuses, after, limit)
        for row in found:
            if row.payload.get("list"):
                # Identity is email: a list needs only the email's profile, and another
                # profile's phone or external id in an import would move that profile instead.
                row.profile.update(phone=None, external_id=None)
        self._attach_properties([r for r in found if r.payload.get("list")], joins_list=True)
        self._attach_properties([r for r in found if not r.payload.get("list")], joins_list=False)
        return found

    def _attach_properties(self, rows: list[ListChange], *, joins_list: bool) -> None:
        """The plan's profile properties (warmup.plan.properties) on each row's profile."""
        plan = self.loaded.plan
        if not rows or not plan.providers.klaviyo.profile_properties:
            return
        conn = self.store.backend
        people = customers.property_rows(conn, sorted({r.customer_id for r in rows}))
        dates = {n: date.fromisoformat(state.date) for n, state in days.states(conn).items()}
        properties.attach(
            plan,
            self.loaded.scenario,
            [(r.profile, people.get(r.customer_id, {}), r.day, dates.get(r.day)) for r in rows],
            joins_list=joins_list,
        )

    def mark(
        self,
        rows: list[ListChange],
        status: str,
        error: str | None = None,
        list_id: str | None = None,
    ) -> None:
        if not rows:
            return
        stamp = now_iso()
        with self.store.backend.transaction():
            self.outbox.set_list_changes([r.id for r in rows], status, error, stamp)
            if status == SENT and list_id:
                self.lists.add_members(list_id, [r.customer_id for r in rows], stamp)
        if status == SENT:
            self.report.sent += len(rows)
        elif status == ON_HOLD:
            self.report.on_hold += len(rows)
        elif status == FAILED:
            self.report.failed += len(rows)

    # sending --------------------------------------------------------------------------------
    def drain(self, retry_held: bool, only: str | None = None) -> None:
        """Every drainable row once, a page at a time: a day's rows (85,000 on the last day of
        a 100k warm-up) are never all in memory. The cursor is the row id, so a row this run
        marked ``sending`` or ``failed`` is not read again."""
        after = 0
        while page := self.rows(retry_held, after, DRAIN_PAGE):
            after = page[-1].id
            self.drain_page(page, only)

    def drain_page(self, page: list[ListChange], only: str | None) -> None:
        groups: dict[tuple[str | None, str, int], list[ListChange]] = defaultdict(list)
        for row in page:
            which = row.payload.get("list")
            if only is not None and which != only:
                continue
            list_day = row.day if which and is_per_day(self.loaded, which) else 0
            groups[(which, row.payload.get("template", ADD_TEMPLATE), list_day)].append(row)
        for (which, template, list_day), rows in groups.items():
            list_id = None
            if which:
                list_id = resolve_list(
                    self.loaded,
                    self.store,
                    self.client,
                    which,
                    list_day or self.day,
                    take_over=self.take_over,
                )
                self.report.lists[which] = list_id
            self.which = which
            members = self.skip_confirmed(template, list_id, rows)
            known = {m.id for m in members}
            rows = [r for r in rows if r.id not in known]
            batch = max(int(r.payload.get("batch_size", 1)) for r in rows) if rows else 1
            with_id = [r for r in rows if r.profile["klaviyo_id"]]
            without_id = [r for r in rows if not r.profile["klaviyo_id"]]
            for part in (with_id, without_id):
                send_all(self, template, which, list_id, part, batch)
            if list_id:
                waiting = [*members, *self.acked.pop(list_id, [])]
                try:
                    confirm(self, list_id, waiting)
                except KlaviyoError as exc:
                    if exc.status != 404:
                        raise
                    # the list itself is gone (deleted in Klaviyo): nobody can be read back
                    # from it, so nobody counts as excluded; `sync --resolve-lists` recovers
                    self.mark(
                        [r for r in waiting if r.id not in self.verified], FAILED, exc.message
                    )
                    self.report.problems.append(f"{exc.message} (list deleted in Klaviyo?)")

    def skip_confirmed(
        self, template: str, list_id: str | None, rows: list[ListChange]
    ) -> list[ListChange]:
        """Customers seen in the list before cost no write call (yesterday's ones); they are
        read back like everyone else before their row counts as sent."""
        if not list_id or template != ADD_TEMPLATE or self.mode() != "force_add":
            return []
        # read once per list and run, not once per page (the members added since are this
        # run's own rows, which come once)
        members = self.members.get(list_id)
        if members is None:
            members = self.members[list_id] = self.lists.members(list_id)
        known = [r for r in rows if r.customer_id in members]
        self.report.already_members += len(known)
        return known

    def mode(self) -> str:
        # Consent is one-way: joining the unsubscribe list never goes through a subscription
        # job, whatever list_mode says (it would make an unsubscribed person SUBSCRIBED).
        return "force_add" if self.which == "unsubscribe" else self.settings.list_mode

    def render(
        self,
        template: str,
        list_id: str | None,
        rows: list[ListChange],
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return webhook_request(
            self.loaded,
            template,
            [r.profile for r in rows],
            which=self.which,
            list_id=list_id,
            list_mode=self.mode(),
            day=self.day,
            extra=extra,
        )


def drain_klaviyo(
    loaded: LoadedPlan,
    store: Store,
    day: int,
    *,
    client: KlaviyoClient | None = None,
    retry_held: bool = False,
    now: datetime | None = None,
    claim: bool = False,
) -> KlaviyoReport:
    """Send day ``day``'s (and earlier days' unfinished) Klaviyo rows, read them back, then cut
    the exclusion list to the days that still own it. ``retry_held`` also drives failed and
    on-hold rows again. Before ``day`` has begun in the plan's timezone no list is touched."""
    report = KlaviyoReport(day)
    moment = now or datetime.now(UTC)
    begins = not_begun(loaded, store, day, moment)
    if begins is not None:
        report.come_back_at = begins.isoformat()
        report.problems.append(
            f"day {day} begins {begins.astimezone(ZoneInfo(loaded.plan.timezone)).isoformat()}: "
            "the exclusion list was not changed; run it again then"
        )
    own = client is None
    chosen = client or client_for(loaded)
    before_requests, before_throttled = chosen.stats.total(), sum(chosen.stats.throttled.values())
    try:
        with store.lock(LOCK_NAME):
            drain = ListChangeDrain(loaded, store, day, chosen, report)
            drain.now = moment
            drain.take_over = claim
            if begins is None:
                drain.drain(retry_held)
                try:
                    cut_exclusion(drain)
                except KlaviyoError as exc:
                    if exc.status != 404:
                        raise
                    report.problems.append(f"{exc.message} (list deleted in Klaviyo?)")
            else:
                # an unsubscribe is never deferred; the day's exclusions wait for its date
                drain.drain(retry_held, only="unsubscribe")
    finally:
        if own:
            chosen.close()
    report.requests = chosen.stats.total() - before_requests
    report.throttled = sum(chosen.stats.throttled.values()) - before_throttled
    log.info(
        "day %d klaviyo: %d sent, %d already members, %d on hold, %d failed, %d removed, "
        "%d requests",
        day,
        report.sent,
        report.already_members,
        report.on_hold,
        report.failed,
        report.removed,
        report.requests,
    )
    return report
