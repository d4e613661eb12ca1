"""Klaviyo → store: the plan's customers' email events (received, opened, clicked, bounced,
marked as spam), incremental and resumable.

Each metric has a cursor in ``klaviyo_event_cursors``: the newest event time committed. A pull
reads that metric's events from the cursor on (``greater-or-equal``: events in the cursor's own
second are read again and absorbed by the event-id key), and commits each page together with
the cursor moved to the page's newest event, so a pull killed part-way resumes where its last
page ended, with no gap and nothing stored twice. The first pull reaches back the plan's
``engagement.window_days``. Events of profiles the store does not hold are not kept (the plan's
customers only), but the cursor still moves past them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from warmup.events import parse_time
from warmup.plan import LoadedPlan
from warmup.plan.models import EngagementKind
from warmup.providers.klaviyo.client import KlaviyoClient
from warmup.providers.klaviyo.events_api import METRIC_NAMES, PulledEvent, event_pages, metric_ids
from warmup.providers.klaviyo.scopes import needed, require_scopes
from warmup.store import Store, engagement, now_iso, open_store
from warmup.store.engagement import StoredEvent


@dataclass
class EngagementPull:
    """What one pull did, per warmup metric name."""

    stored: dict[str, int] = field(default_factory=dict)  # new events kept
    read: dict[str, int] = field(default_factory=dict)  # events Klaviyo returned
    missing: list[str] = field(default_factory=list)  # metrics the account does not have

    def summary(self) -> str:
        parts = [f"{kind} +{self.stored.get(kind, 0):,}" for kind in self.read]
        text = "engagement pulled from Klaviyo: " + (", ".join(parts) or "nothing")
        if self.missing:
            names = ", ".join(METRIC_NAMES[k] for k in self.missing)
            text += f" (the account has no {names} metric yet)"
        return text


def pull_engagement(
    loaded: LoadedPlan, store: Store, client: KlaviyoClient, *, now: datetime | None = None
) -> EngagementPull:
    settings = loaded.plan.engagement
    kinds: Sequence[EngagementKind] = settings.pull
    ids = metric_ids(client, [METRIC_NAMES[k] for k in kinds])
    start = (now or datetime.now(UTC)) - timedelta(days=settings.window_days)
    report = EngagementPull()
    for kind in kinds:
        metric_id = ids.get(METRIC_NAMES[kind])
        if metric_id is None:
            report.missing.append(kind)
            continue
        # a metric recreated under a new id starts again from the window
        at = engagement.cursor(store.backend, kind)
        since = at.until if at and at.metric_id == metric_id else parse_time(start.isoformat())
        report.read[kind] = report.stored[kind] = 0
        for page in event_pages(client, metric_id, since):
            report.read[kind] += len(page)
            report.stored[kind] += _store_page(store, kind, metric_id, since, page)
    return report


def _store_page(
    store: Store, kind: str, metric_id: str, since: str, page: list[PulledEvent]
) -> int:
    events = [StoredEvent(e.id, e.email, parse_time(e.occurred_at)) for e in page]
    until = max([since, *(e.occurred_at for e in events)])
    with store.backend.transaction():
        return engagement.store_page(
            store.backend, kind, metric_id, until, events, pulled_at=now_iso()
        )


def pull_engagement_for_plan(
    loaded: LoadedPlan, *, now: datetime | None = None
) -> EngagementPull | None:
    """Before each day and on ``warmup sync --pull``: the pull, when the plan ranks by Klaviyo's
    engagement (``engagement.source: klaviyo``); None otherwise. ``now`` is a rehearsal's
    clock: the first pull's window ends there, not at the machine's time."""
    if loaded.plan.engagement.source != "klaviyo":
        return None
    from warmup.dispatch.klaviyo import client_for

    with (
        closing(open_store(loaded.store_path, create=False)) as store,
        client_for(loaded) as client,
    ):
        return pull_engagement(loaded, store, client, now=now)


def check_scopes_for_plan(loaded: LoadedPlan) -> None:
    """Before a run's first call: the key has every scope the plan's work needs, or InvalidInput
    names the missing ones (warmup.providers.klaviyo.scopes)."""
    from warmup.dispatch.klaviyo import client_for

    k = loaded.plan.providers.klaviyo
    probes = needed(
        engagement=loaded.plan.engagement.source == "klaviyo",
        subscriptions=k.list_mode == "subscribe" or k.unsubscribe_via_api,
    )
    with client_for(loaded) as client:
        require_scopes(client, probes)
