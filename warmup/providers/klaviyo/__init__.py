"""Klaviyo's REST API: the httpx client (auth, revision, per-endpoint limits, retries) and the
list and consent operations built on its batch endpoints.

The names load on first use (PEP 562): the plan's models read only ``revisions`` and
``endpoints``, and importing httpx for them cost every ``warmup validate`` about 0.1 CPU s."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmup.providers.klaviyo.client import KlaviyoClient, RetryPolicy, Stats
    from warmup.providers.klaviyo.endpoints import ENDPOINTS, Endpoint, Tier, endpoint_for

_HOMES = {
    "KlaviyoClient": "client",
    "RetryPolicy": "client",
    "Stats": "client",
    "ENDPOINTS": "endpoints",
    "Endpoint": "endpoints",
    "Tier": "endpoints",
    "endpoint_for": "endpoints",
}

__all__ = ["ENDPOINTS", "Endpoint", "KlaviyoClient", "RetryPolicy", "Stats", "Tier", "endpoint_for"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
