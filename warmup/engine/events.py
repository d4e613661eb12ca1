"""The event flows: ``on: event`` triggers (unsubscribed, complained…) for unprocessed events.

``warmup serve`` stores provider and consent events in ``events``; ``process_events`` walks each
unprocessed event whose type an event trigger lists, for the customer it names: a
``consent_reject`` node unsubscribes them (with a ``consent_changes`` row), a ``webhook`` node
writes an outbox row keyed ``plan:event:<events.id>:<node>:<customer>``, conditions and audiences
branch as in the date flow. Waits and emails do not apply to events and are passed through.
Each event is marked ``processed_at`` in the same transaction as its effects, so a kill
re-processes it without duplicates.
"""

from __future__ import annotations

import logging
from datetime import datetime

from warmup import clock
from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.engine.nodes import register_sql_functions, type_of
from warmup.engine.nodes.base import EventVisit
from warmup.plan import LoadedPlan
from warmup.plan.calendar import date_of_day, local_time
from warmup.plan.scenario import TriggerNode
from warmup.store import Store, days, now_iso
from warmup.store import events as stored_events

log = logging.getLogger("warmup.engine")
BATCH = 500


def process_events(loaded: LoadedPlan, store: Store, now: datetime | None = None) -> int:
    """Run the event flows for every unprocessed event they listen to; returns how many."""
    triggers = [t for t in loaded.scenario.triggers() if t.on == "event"]
    types = sorted({kind for t in triggers for kind in t.events})
    if not types:
        return 0
    moment = now_iso(now or clock.now())
    done = 0
    while True:
        conn = store.backend
        with conn.transaction():
            rows = stored_events.next_unprocessed(conn, types, BATCH)
            for event_id, kind, customer_id, day in rows:
                if customer_id is not None:
                    ctx = _context(loaded, store, day)
                    for trigger in triggers:
                        if kind in trigger.events:
                            _walk(ctx, trigger, int(event_id), int(customer_id), moment)
                stored_events.mark_processed(conn, event_id, moment)
        done += len(rows)
        if len(rows) < BATCH:
            break
    if done:
        log.info("processed %s events", done)
    return done


def _context(loaded: LoadedPlan, store: Store, day: int | None) -> DayContext:
    if day is None:
        day = days.latest_day(store.backend) or 1
    day = max(1, min(int(day), loaded.plan.day_count))
    when = date_of_day(loaded.plan, day, days.states(store.backend))
    return DayContext(loaded, store.backend, day, when, local_time(loaded.plan, when), None, False)


def _walk(ctx: DayContext, trigger: TriggerNode, event_id: int, customer_id: int, now: str) -> None:
    nodes = ctx.loaded.scenario.by_id
    register_sql_functions(ctx, customers=[customer_id])
    visit = EventVisit(ctx, event_id, customer_id, now)
    node_id = trigger.next
    seen: set[str] = set()
    while node_id is not None and node_id not in seen:
        seen.add(node_id)
        node = nodes[node_id]
        kind = type_of(node)
        kind.on_event(node, visit)
        if kind.is_allocation(node):
            break  # an allocation belongs to the date flow
        test = kind.predicate(node, ctx)
        if test is None:
            node_id = node.edges().get("next")
        else:
            node_id = node.edges().get("yes" if sql.test_one(ctx.conn, test, customer_id) else "no")
