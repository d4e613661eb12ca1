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
from warmup.store import Store, now_iso, open_store

_LOOKUP = 500  # emails per IN (…) lookup, under SQLite's variable limit


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
        row = store.conn.execute(
            "SELECT metric_id, until FROM klaviyo_event_cursors WHERE kind = ?", (kind,)
        ).fetchone()
        # a metric recreated under a new id starts again from the window
        since = str(row[1]) if row and row[0] == metric_id else parse_time(start.isoformat())
        report.read[kind] = report.stored[kind] = 0
        for page in event_pages(client, metric_id, since):
            report.read[kind] += len(page)
            report.stored[kind] += _store_page(store, kind, metric_id, since, page)
    return report


def _store_page(
    store: Store, kind: str, metric_id: str, since: str, page: list[PulledEvent]
) -> int:
    times = [parse_time(e.occurred_at) for e in page]
    until = max([since, *times])
    emails = sorted({e.email for e in page if e.email})
    stored = 0
    with store.transaction() as conn:
        ids: dict[str, int] = {}
        for i in range(0, len(emails), _LOOKUP):
            chunk = emails[i : i + _LOOKUP]
            marks = ",".join("?" for _ in chunk)
            ids.update(
                conn.execute(f"SELECT email, id FROM customers WHERE email IN ({marks})", chunk)
            )
        for event, at in zip(page, times, strict=True):
            customer = ids.get(event.email or "")
            if customer is None:
                continue
            stored += conn.execute(
                "INSERT OR IGNORE INTO klaviyo_events (id, customer_id, kind, occurred_at) "
                "VALUES (?, ?, ?, ?)",
                (event.id, customer, kind, at),
            ).rowcount
        conn.execute(
            "INSERT INTO klaviyo_event_cursors (kind, metric_id, until, events, pulled_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET "
            "metric_id = excluded.metric_id, until = excluded.until, "
            "events = CASE WHEN klaviyo_event_cursors.metric_id = excluded.metric_id "
            "THEN klaviyo_event_cursors.events + excluded.events ELSE excluded.events END, "
            "pulled_at = excluded.pulled_at",
            (kind, metric_id, until, stored, now_iso()),
        )
    return stored


def pull_engagement_for_plan(loaded: LoadedPlan) -> EngagementPull | None:
    """Before each day and on ``warmup sync --pull``: the pull, when the plan ranks by Klaviyo's
    engagement (``engagement.source: klaviyo``); None otherwise."""
    if loaded.plan.engagement.source != "klaviyo":
        return None
    from warmup.dispatch.klaviyo import client_for

    with (
        closing(open_store(loaded.store_path, create=False)) as store,
        client_for(loaded) as client,
    ):
        return pull_engagement(loaded, store, client)


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
