"""``warmup sync``: drive every unfinished list change again (failed and on-hold too), cut the
exclusion list, then optionally read the lists back and repair them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warmup.dispatch.klaviyo.drain import drain_klaviyo
from warmup.dispatch.klaviyo.report import KlaviyoReport
from warmup.dispatch.klaviyo.resolve import client_for
from warmup.dispatch.klaviyo.verify import VerifyReport, verify_lists
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.store import Store, days, open_store
from warmup.store.outbox import FAILED, ON_HOLD, Outbox


@dataclass
class SyncReport:
    drain: KlaviyoReport
    verify: VerifyReport | None
    backlog: dict[str, Any]

    @property
    def ok(self) -> bool:
        clean = not (self.backlog[FAILED] or self.backlog[ON_HOLD])
        return clean and (self.verify is None or self.verify.ok or self.verify.repaired)

    def summary(self) -> str:
        d = self.drain
        lines = [
            f"day {d.day}: {d.sent} confirmed by Klaviyo ({d.already_members} already "
            f"members), {d.removed} removed from the exclusion list, {d.on_hold} on hold, "
            f"{d.failed} failed; {d.requests} requests, {d.throttled} throttled"
        ]
        if self.verify is not None:
            for diff in self.verify.diffs:
                state = (
                    "matches the store"
                    if diff.ok
                    else (
                        f"{len(diff.missing)} missing, {len(diff.extra) - diff.foreign} extra"
                        + (" (repaired)" if self.verify.repaired else "")
                    )
                )
                lines.append(
                    f"{diff.which} list {diff.list_id}: {diff.actual} in Klaviyo, "
                    f"{diff.expected} expected — {state}"
                    + (
                        f"; {diff.foreign} member(s) warmup did not add, left alone"
                        if diff.foreign
                        else ""
                    )
                )
                for email in diff.missing[:5] + diff.extra[:5]:
                    mark = "missing" if email in diff.missing else "extra"
                    lines.append(f"  {mark}: {email}")
        for row in self.backlog["attention"]:
            lines.append(f"{row['status']}: day {row['day']} {row['email']}: {row['error']}")
        return "\n".join(lines)


def latest_day_or_none(store: Store) -> int | None:
    """The latest day that has run or has Klaviyo rows; None before any."""
    known = [days.latest_day(store.backend), Outbox(store).latest_list_change_day()]
    return max((d for d in known if d is not None), default=None)


def latest_day(store: Store) -> int:
    """The latest day that has run or has Klaviyo rows."""
    latest = latest_day_or_none(store)
    if latest is None:
        raise InvalidInput(
            "no day has run yet, so there is nothing to sync", hint="run `warmup run PLAN` first"
        )
    return latest


def sync_plan(
    loaded: LoadedPlan,
    day: int | None = None,
    *,
    verify: bool = False,
    repair: bool = False,
    claim: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    """``warmup sync PLAN``: open the plan's store and :func:`sync`."""
    store = open_store(loaded.store_path, create=False)
    try:
        return sync(loaded, store, day, verify=verify, repair=repair, claim=claim, now=now)
    finally:
        store.close()


def sync(
    loaded: LoadedPlan,
    store: Store,
    day: int | None = None,
    *,
    verify: bool = False,
    repair: bool = False,
    client: KlaviyoClient | None = None,
    claim: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    """``warmup sync``: drive every unfinished row again (failed and on-hold too), cut the
    exclusion list, then optionally read the lists back and repair them."""
    own = client is None
    chosen = client or client_for(loaded)
    try:
        target = day if day is not None else latest_day(store)
        drained = drain_klaviyo(
            loaded, store, target, client=chosen, retry_held=True, claim=claim, now=now
        )
        checked = (
            verify_lists(loaded, store, target, client=chosen, repair=repair, claim=claim, now=now)
            if verify or repair
            else None
        )
    finally:
        if own:
            chosen.close()
    return SyncReport(drained, checked, Outbox(store).list_change_backlog())
