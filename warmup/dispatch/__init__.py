"""Dispatch drains the outbox through the providers, exactly once in effect, resumable.

``dispatch_day`` runs Klaviyo first — a customer's email waits for their exclusion-list row to be
confirmed — and then the email dispatcher (``warmup.dispatch.email``) when it is installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from warmup.dispatch.klaviyo import KlaviyoReport, drain_klaviyo, klaviyo_backlog
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.store import Store

__all__ = ["DispatchReport", "dispatch_day", "klaviyo_backlog"]


@dataclass
class DispatchReport:
    klaviyo: KlaviyoReport
    email: Any | None


def dispatch_day(loaded: LoadedPlan, store: Store, day: int, *,
                 klaviyo_client: KlaviyoClient | None = None) -> DispatchReport:
    klaviyo = drain_klaviyo(loaded, store, day, client=klaviyo_client)
    try:
        email_module = importlib.import_module("warmup.dispatch.email")
    except ModuleNotFoundError as exc:
        if exc.name != "warmup.dispatch.email":
            raise
        return DispatchReport(klaviyo, None)
    return DispatchReport(klaviyo, email_module.drain_email(loaded, store, day))
