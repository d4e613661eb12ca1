"""Verify before send: a list change counts as sent only once its customer's email is read
back from the list (a 204, a 202 or a finished import job is an acknowledgement, not proof).
Whoever is not seen joins again by email (``join_by_email``, as ``sync --repair``) and is read
back once more, else the row goes on hold."""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo import lists as ops
from warmup.store.outbox import ON_HOLD, SENT, ListChange

if TYPE_CHECKING:
    from warmup.dispatch.klaviyo.drain import ListChangeDrain

NOT_IN_LIST = "not in the list after sync (read back from Klaviyo)"


def confirm(drain: ListChangeDrain, list_id: str, rows: list[ListChange]) -> None:
    """Mark rows sent only once their email is read back as a member of the list; the rest
    join again by email, one import for all of them, and are read back once more."""
    rows = [r for r in rows if r.id not in drain.verified]
    missing = verify_members(drain, list_id, rows)
    if not missing:
        return
    reasons = drain.reasons
    again = [r for r in missing if r.id not in reasons]
    if again:
        outcome = join_by_email(drain.client, [r.profile for r in again], list_id)
        drain.report.requests_repair += outcome.calls
        for row in again:
            email = (row.profile["email"] or "").lower()
            if email in outcome.errors:
                reasons[row.id] = f"Klaviyo: {outcome.errors[email]}"
        missing = verify_members(drain, list_id, [r for r in again if r.id not in reasons])
        missing += [r for r in rows if r.id in reasons and r not in missing]
    for row in missing:
        drain.mark([row], ON_HOLD, reasons.get(row.id, NOT_IN_LIST))


def verify_members(
    drain: ListChangeDrain, list_id: str, rows: list[ListChange]
) -> list[ListChange]:
    """Read the rows' emails back from the list, 100 a page on the client's workers; each
    page's members are marked sent as it arrives, so their email can go while later pages are
    read. Returns the rows not seen."""
    by_email: dict[str, list[ListChange]] = defaultdict(list)
    for row in rows:
        by_email[(row.profile["email"] or "").lower()].append(row)
    batches = [list(b) for b in ops.chunks(sorted(by_email), ops.PAGE)]

    def read(batch: list[str]) -> list[ops.Member]:
        return list(ops.iter_members(drain.client, list_id, emails=batch))

    seen: set[str] = set()
    workers = max(1, min(drain.client.workers, len(batches)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for members in pool.map(read, batches):
            drain.report.requests_readback += 1
            found = {(m.email or "").lower(): m.id for m in members}
            page_rows = [r for e in found if e in by_email for r in by_email[e]]
            drain.mark(page_rows, SENT, list_id=list_id)
            drain.verified.update(r.id for r in page_rows)
            drain.lists.confirm_ids(
                {r.customer_id: found[e] for e in found for r in by_email.get(e, [])}
            )
            seen.update(found)
    return [r for r in rows if (r.profile["email"] or "").lower() not in seen]


def await_subscriptions(drain: ListChangeDrain, list_id: str, chunk: list[ListChange]) -> set[str]:
    """Subscription jobs cannot be polled (no GET): confirm by reading the list for the
    batch's emails until all joined. Stragglers are returned as not yet confirmed."""
    client = drain.client
    waiting = {(r.profile["email"] or "").lower() for r in chunk}
    poll = 0.02 if client.scale > 1 else 0.5
    deadline = time.monotonic() + (10 if client.scale > 1 else 120)
    while waiting and time.monotonic() < deadline:
        before = client.stats.total()
        joined = {
            (m.email or "").lower()
            for m in ops.iter_members(client, list_id, emails=sorted(waiting))
        }
        # the subscription wait is this mode's read-back: counted with the others
        drain.report.requests_readback += client.stats.total() - before
        waiting -= joined
        if waiting:
            time.sleep(poll)
    return waiting


def join_by_email(
    client: KlaviyoClient, people: list[dict[str, Any]], list_id: str
) -> ops.JobOutcome:
    """Join a list through a bulk import keyed by email alone: no phone or external id that
    could match (and move) another profile. What verify-before-send and ``sync --repair`` use."""
    only_email = [{**p, "phone": None, "external_id": None} for p in people]
    return ops.import_profiles(client, only_email, list_id, poll=0.02 if client.scale > 1 else 0.5)
