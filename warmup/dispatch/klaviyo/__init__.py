"""Drain the engine's Klaviyo webhook rows and keep the plan's Klaviyo lists exact.

Guarantees, per day N:
- a webhook row becomes ``sent`` only once the customer's email is read back from the list
  (a 204, a 202 or a finished import job is an acknowledgement, not proof); so the customer's
  email row (``after_key``) waits until Klaviyo holds them. Whoever is not seen joins again by
  email (``join_by_email``, as ``sync --repair``) and is read back once more, else ``on_hold``;
- list imports carry the email alone: another profile's phone or external id cannot move anyone;
- a per-profile error (read by its pointer index) puts that row ``on_hold`` with Klaviyo's
  message and the rest of the batch goes on; a call that keeps failing leaves its rows
  ``failed``: nothing is dropped silently, ``warmup status`` lists them, ``sync`` retries;
- a single exclusion list keeps each day's members until that day has ended (plan timezone plus
  ``exclusion_margin_hours``), then is cut back; only members warmup added are ever removed.
Every Klaviyo call is idempotent (list adds/removes, imports keyed by email), so a killed run is
simply run again: rows left ``sending`` are sent once more and read back, nothing twice in effect.

One job a module: ``drain`` (the drain and its entry point), ``send`` (batches to Klaviyo),
``readback`` (verify before send), ``unsubscribe`` (lowering consent in Klaviyo), ``cut``
(cutting the exclusion list back), ``window`` (when a day begins and which days own the list),
``resolve`` (list names → ids, claims), ``verify`` (read back and repair), ``sync``
(``warmup sync``), ``report`` (the drain's counts). The rows and list state live in the store
(:mod:`warmup.store.outbox`, :mod:`warmup.store.lists`).
"""

from warmup.dispatch.klaviyo.drain import ListChangeDrain, drain_klaviyo
from warmup.dispatch.klaviyo.readback import NOT_IN_LIST, join_by_email
from warmup.dispatch.klaviyo.report import KlaviyoReport
from warmup.dispatch.klaviyo.resolve import check_list_claims, client_for, resolve_list
from warmup.dispatch.klaviyo.sync import SyncReport, sync, sync_plan
from warmup.dispatch.klaviyo.verify import ListDiff, VerifyReport, verify_lists
from warmup.dispatch.klaviyo.window import day_bounds, not_begun, owning_days

__all__ = [
    "NOT_IN_LIST",
    "KlaviyoReport",
    "ListChangeDrain",
    "ListDiff",
    "SyncReport",
    "VerifyReport",
    "check_list_claims",
    "client_for",
    "day_bounds",
    "drain_klaviyo",
    "join_by_email",
    "not_begun",
    "owning_days",
    "resolve_list",
    "sync",
    "sync_plan",
    "verify_lists",
]
