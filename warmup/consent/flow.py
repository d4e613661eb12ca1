"""The consent flow after an unsubscribe or complaint: the engine's event entry (the scenario's
``on: event`` trigger → consent_reject → unsubscribe-list webhook rows), then the Klaviyo
dispatcher for those rows. Both belong to other layers' owners; this module only sequences them,
so ``warmup serve`` and ``warmup events import`` run the very same steps as ``warmup run``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.engine import process_events
from warmup.errors import InvalidInput, WarmupError
from warmup.events import (
    DEFAULT_SOURCE,
    RecordResult,
    read_events_csv,
    record_events,
)
from warmup.plan import LoadedPlan
from warmup.store import Store, consents, days, open_store

log = logging.getLogger(__name__)


@dataclass
class FlowReport:
    events_processed: int
    # None when no unsubscribe-list row waited for Klaviyo (or Klaviyo could not be reached).
    klaviyo_synced: int | None
    # Why Klaviyo could not be reached (the consent change in the store stands; the rows wait
    # in the outbox for the next pass or `warmup sync`).
    klaviyo_error: str | None = None


def run_consent_flow(loaded: LoadedPlan, store: Store) -> FlowReport:
    """Run the scenario's event flow for unprocessed unsubscribes/complaints, then push the
    resulting unsubscribe-list rows to Klaviyo. Safe to call any time, as often as wanted."""
    processed = process_events(loaded, store)
    day = _sync_day(store)
    if day is None:
        return FlowReport(processed, None)
    try:
        synced = drain_klaviyo(loaded, store, day).sent
    except WarmupError as exc:
        log.warning("Klaviyo sync of unsubscribes failed: %s", exc.render())
        return FlowReport(processed, None, exc.render())
    return FlowReport(processed, synced)


def _sync_day(store: Store) -> int | None:
    """The day to drain Klaviyo rows up to, or None when no unsubscribe-list row waits. The
    dispatcher also trims the exclusion list to this day's allocation, so it must be the latest
    day that exists — never an older one, whose allocation is not today's."""
    waiting = consents.unsubscribe_rows_waiting_day(store.backend)
    if waiting is None:
        return None
    return max(waiting, days.latest_day(store.backend) or 0)


@dataclass
class EventImportReport:
    file: Path
    rows_read: int
    result: RecordResult
    flow: FlowReport | None

    def summary(self) -> str:
        r = self.result
        text = (
            f"{self.file.name}: {self.rows_read} events read, {r.stored} stored, "
            f"{r.duplicates} already stored"
        )
        if r.unknown_customers:
            text += f", {r.unknown_customers} for emails not in the store"
        if r.consent_events:
            text += f"; {r.consent_events} unsubscribes/complaints went through the consent flow"
        if self.flow is not None and self.flow.klaviyo_error:
            text += (
                f"\nKlaviyo not updated yet: {self.flow.klaviyo_error} — the unsubscribe-"
                "list rows wait in the outbox; `warmup sync PLAN` sends them"
            )
        return text


def import_events_file(
    loaded: LoadedPlan, path: Path, *, source: str = DEFAULT_SOURCE
) -> EventImportReport:
    """Store a provider's exported events (format in :mod:`warmup.events`) once each, then run
    the scenario's event flows (unsubscribes and complaints: the consent flow) for them."""
    if not source.strip():
        raise InvalidInput("--source is empty", hint="name the provider, e.g. --source new")
    events = read_events_csv(path)
    store = open_store(loaded.store_path, create=False)
    try:
        result = record_events(store, events, source=source)
        flow = run_consent_flow(loaded, store) if result.stored else None
    finally:
        store.close()
    return EventImportReport(path, len(events), result, flow)
