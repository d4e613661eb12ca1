"""Klaviyo's events API on the wire: metric ids by name, and one metric's events page by page.

``GET /api/events`` (XL tier, up to 1000 a page) filtered by ``metric_id`` and
``greater-or-equal(datetime, …)``, oldest first, with each event's profile included for its
email (``fields[profile]=email``): one page is one request, so a pull of N events costs
ceil(N / 1000) requests at 350/s, 3500/min. Pages are yielded whole so that the caller can
commit a page together with its cursor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from warmup.providers.klaviyo.client import KlaviyoClient

EVENTS_PAGE = 1000
# Klaviyo's own names for the email metrics it records (seed 004's list of tracked events).
METRIC_NAMES = {
    "received": "Received Email",
    "opened": "Opened Email",
    "clicked": "Clicked Email",
    "bounced": "Bounced Email",
    "marked_as_spam": "Marked Email as Spam",
}


@dataclass(frozen=True)
class PulledEvent:
    id: str
    occurred_at: str  # ISO 8601 as Klaviyo gave it
    email: str | None


def metric_ids(client: KlaviyoClient, names: Sequence[str]) -> dict[str, str]:
    """Metric id per name, for the names the account has; a name recorded by several
    integrations prefers Klaviyo's own (its email metrics are the ones the seed means)."""
    found: dict[str, tuple[bool, str]] = {}
    url: str | None = "/api/metrics"
    while url:
        document = client.get(url)
        for item in document["data"]:
            attributes = item.get("attributes") or {}
            name = str(attributes.get("name"))
            if name not in names:
                continue
            own = ((attributes.get("integration") or {}).get("name") or "") == "Klaviyo"
            if name not in found or (own and not found[name][0]):
                found[name] = (own, str(item["id"]))
        url = (document.get("links") or {}).get("next")
    return {name: metric_id for name, (_, metric_id) in found.items()}


def event_pages(
    client: KlaviyoClient, metric_id: str, since: str, *, page_size: int = EVENTS_PAGE
) -> Iterator[list[PulledEvent]]:
    """Every event of ``metric_id`` at or after ``since``, oldest first, one list per page."""
    params: dict[str, str] | None = {
        "filter": f'equals(metric_id,"{metric_id}"),greater-or-equal(datetime,{since})',
        "sort": "datetime",
        "include": "profile",
        "fields[profile]": "email",
        "page[size]": str(page_size),
    }
    url: str | None = "/api/events"
    while url:
        document = client.get(url, params)
        yield _page(document)
        url, params = (document.get("links") or {}).get("next"), None


def _page(document: dict[str, Any]) -> list[PulledEvent]:
    emails = {
        str(item["id"]): (item.get("attributes") or {}).get("email")
        for item in document.get("included") or []
        if item.get("type") == "profile"
    }
    out: list[PulledEvent] = []
    for item in document["data"]:
        attributes = item.get("attributes") or {}
        profile = ((item.get("relationships") or {}).get("profile") or {}).get("data") or {}
        email = emails.get(str(profile.get("id")))
        out.append(
            PulledEvent(
                id=str(item["id"]),
                occurred_at=str(attributes.get("datetime")),
                email=str(email).strip().lower() if email else None,
            )
        )
    return out
