"""Klaviyo's REST API: the httpx client (auth, revision, per-endpoint limits, retries) and the
list and consent operations built on its batch endpoints."""

from warmup.providers.klaviyo.client import KlaviyoClient, RetryPolicy, Stats
from warmup.providers.klaviyo.endpoints import ENDPOINTS, Endpoint, Tier, endpoint_for

__all__ = ["ENDPOINTS", "Endpoint", "KlaviyoClient", "RetryPolicy", "Stats", "Tier", "endpoint_for"]
