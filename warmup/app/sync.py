"""`warmup sync`: drive unfinished, failed and on-hold Klaviyo actions again and keep the lists
exact — optionally after pulling Klaviyo's unsubscribes (and its engagement events, when the
plan ranks by them), or after forgetting list ids found by name (a list deleted in Klaviyo is
found or made anew, then repaired)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import datetime

from warmup.consent.categories import pull_consent_lists_for_plan
from warmup.consent.pull import pull_for_plan
from warmup.dispatch.klaviyo import SyncReport, sync_plan
from warmup.dispatch.klaviyo.sync import latest_day_or_none
from warmup.dispatch.relist import forget_resolved_lists
from warmup.engagement.pull import pull_engagement_for_plan
from warmup.plan import LoadedPlan
from warmup.store import open_store


def sync(
    loaded: LoadedPlan,
    day: int | None,
    *,
    verify: bool = False,
    repair: bool = False,
    claim: bool = False,
    pull: bool = False,
    resolve_lists: bool = False,
    now: datetime | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> SyncReport | None:
    """Sync ``day`` (None: the latest); ``say`` receives a line per step before the report.
    None: a ``pull`` before any day ran, which is all there was to do."""
    if pull:
        pulled = pull_for_plan(loaded)
        say(f"pulled {pulled:,} unsubscribes or suppressions from Klaviyo")
        for category in pull_consent_lists_for_plan(loaded):
            say(category.describe())
        engagement = pull_engagement_for_plan(loaded, now=now)
        if engagement is not None:
            say(engagement.summary())
        if day is None and not (verify or repair or resolve_lists):
            with closing(open_store(loaded.store_path, create=False)) as store:
                if latest_day_or_none(store) is None:
                    say("no day has run yet: nothing to drive or read back")
                    return None
    if resolve_lists:
        with closing(open_store(loaded.store_path, create=False)) as store:
            for name, list_id in forget_resolved_lists(store):
                say(f"list {name!r}: forgot id {list_id}; finding it by name again")
        # a list found or made anew holds none of the earlier confirmed changes: read it
        # back and make it exact
        repair = True
    return sync_plan(loaded, day, verify=verify, repair=repair, claim=claim, now=now)
