"""Klaviyo → store: profiles that unsubscribed or were suppressed in Klaviyo since the last pull
become unsubscribed/suppressed in the store, so the new provider never mails them.

The last pull's high-water mark (the newest suppression timestamp seen, Klaviyo's clock, not
ours) is kept in ``meta`` under :data:`PULL_META_KEY`; a pull that dies part-way is simply
repeated, since marking someone unsubscribed twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from warmup.events import parse_time
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo.client import KlaviyoClient
from warmup.providers.klaviyo.lists import ConsentChange, consent_changes_since
from warmup.store import Store, consents, customers, now_iso, open_store

PULL_META_KEY = "klaviyo_consent_pulled_until"
PULL_SOURCE = "klaviyo-pull"
EPOCH = "1970-01-01T00:00:00+00:00"
# An unsubscribe withdraws consent; every other suppression (bounce, complaint, manual) makes
# the address unmailable for a reason the customer did not choose.
_STATUS_FOR_REASON = {
    "UNSUBSCRIBE": consents.UNSUBSCRIBED,
    "SPAM_COMPLAINT": consents.UNSUBSCRIBED,
}
_BATCH = 500

Changes = Callable[[KlaviyoClient, str], Iterable[ConsentChange]]


def pull_klaviyo_unsubscribes(
    loaded: LoadedPlan,
    store: Store,
    client: KlaviyoClient,
    *,
    changes: Changes = consent_changes_since,
) -> int:
    """Mark the store's customers Klaviyo unsubscribed or suppressed since the last pull;
    the number of customers whose consent changed."""
    since = store.get_meta(PULL_META_KEY) or EPOCH
    newest = since
    changed = 0
    batch: list[tuple[str, str]] = []
    for change in changes(client, since):
        if change.timestamp and parse_time(change.timestamp) > parse_time(newest):
            newest = change.timestamp
        if change.email:
            batch.append(
                (
                    change.email.strip().lower(),
                    _STATUS_FOR_REASON.get(change.reason, consents.SUPPRESSED),
                )
            )
        if len(batch) >= _BATCH:
            changed += _apply(store, batch)
            batch = []
    changed += _apply(store, batch)
    if newest != since:
        with store.backend.transaction():
            store.set_meta(PULL_META_KEY, newest)
    return changed


def _apply(store: Store, batch: list[tuple[str, str]]) -> int:
    """Withdraw consent for a batch (email, status); an already withdrawn consent stays as it
    is. The store's trigger records each change in consent_changes."""
    if not batch:
        return 0
    changed = 0
    conn = store.backend
    with conn.transaction():
        for email, status in batch:
            customer_id = customers.id_for_email(conn, email)
            if customer_id is None:
                continue
            changed += consents.set_status(
                conn,
                customer_id,
                status,
                changed_at=now_iso(),
                source=PULL_SOURCE,
                keep=consents.WITHDRAWN,
            )
    return changed


def pull_for_plan(loaded: LoadedPlan) -> int:
    """``warmup sync PLAN --pull`` and the step before each day: open the plan's store and
    Klaviyo client, pull, close. Raises InvalidInput when the API key variable is not set."""
    from warmup.dispatch.klaviyo import client_for

    store = open_store(loaded.store_path, create=False)
    try:
        with client_for(loaded) as client:
            return pull_klaviyo_unsubscribes(loaded, store, client)
    finally:
        store.close()
