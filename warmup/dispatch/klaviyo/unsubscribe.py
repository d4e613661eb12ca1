"""Lowering consent in Klaviyo for the people joining the unsubscribe list: an unsubscribe job
(global: nobody stays subscribed anywhere), then their marketing consent read back."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from warmup.providers.klaviyo import lists as ops
from warmup.store.outbox import ListChange

if TYPE_CHECKING:
    from warmup.dispatch.klaviyo.drain import ListChangeDrain

UNSUBSCRIBE_TEMPLATE = "klaviyo/unsubscribe-profiles.json.j2"


def lower_consent(drain: ListChangeDrain, chunk: list[ListChange]) -> dict[int, str]:
    """Unsubscribe in Klaviyo (globally: no list, so nobody stays subscribed anywhere) the
    unsubscribed people whose consent warmup raised itself — a subscription job put them on
    the exclusion list under ``list_mode: subscribe`` — or everyone with
    ``unsubscribe_via_api``; then read their subscriptions back. Returns the chunk's indexes
    still able to receive marketing, with the reason."""
    client = drain.client
    raised = raised_consent(drain, [r.customer_id for r in chunk])
    targets = [r for r in chunk if drain.settings.unsubscribe_via_api or r.customer_id in raised]
    if not targets:
        return {}
    for part in ops.chunks(targets, ops.MAX_UNSUBSCRIBE):
        unsub = drain.render(UNSUBSCRIBE_TEMPLATE, None, list(part))
        client.call(unsub["method"], unsub["path"], json=unsub["body"])
    waiting = {(r.profile["email"] or "").lower() for r in targets}
    poll = 0.02 if client.scale > 1 else 0.5
    deadline = time.monotonic() + (10 if client.scale > 1 else 120)
    while waiting:
        before = client.stats.total()
        state = ops.email_marketing(client, sorted(waiting))
        drain.report.requests_readback += client.stats.total() - before
        waiting = {
            e
            for e in waiting
            if (state.get(e) or {}).get("can_receive_email_marketing")
            or (state.get(e) or {}).get("consent") == "SUBSCRIBED"
        }
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return {
        i: "still subscribed in Klaviyo after the unsubscribe job (read back)"
        for i, r in enumerate(chunk)
        if (r.profile["email"] or "").lower() in waiting
    }


def raised_consent(drain: ListChangeDrain, customers: list[int]) -> set[int]:
    # under subscribe mode an exclusion joined through a subscription job: SUBSCRIBED
    if drain.settings.list_mode != "subscribe" or not customers:
        return set()
    return drain.outbox.customers_listed_by("exclusion", customers)
