"""The sandbox account's events and metrics: what ``POST /api/events`` records and the event,
metric and metric-aggregate reads answer.

Klaviyo's rules kept here: a metric is created by the first event naming it; an event's
``unique_id`` (default: its time to the second) is recorded once per profile and metric; the
time is truncated to the second and must lie after 1990 and at most a year ahead.
"""

from __future__ import annotations

import random
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


class EventRefused(Exception):
    """An event Klaviyo would refuse (400): ``pointer`` is relative to the event's attributes."""

    def __init__(self, detail: str, pointer: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


@dataclass
class Metric:
    id: str
    name: str
    created: str
    updated: str
    service: str = "api"


@dataclass
class Event:
    id: str
    metric_id: str
    profile_id: str
    datetime: str
    timestamp: int
    properties: dict[str, Any]
    unique_id: str
    value: float | None = None
    value_currency: str | None = None


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; no offset = UTC), as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class EventLog:
    metrics: dict[str, Metric] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    # Profiles created for an event that named only an anonymous_id.
    anonymous: dict[str, str] = field(default_factory=dict)

    def metric_named(self, name: str, service: str, rng: random.Random) -> Metric:
        for metric in self.metrics.values():
            if metric.name == name:
                return metric
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        alphabet = string.ascii_letters + string.digits
        mid = "".join(rng.choice(alphabet) for _ in range(6))
        metric = Metric(mid, name, stamp, stamp, service)
        self.metrics[mid] = metric
        return metric

    def record(
        self,
        attributes: dict[str, Any],
        metric: Metric,
        profile_id: str,
        event_id: str,
    ) -> Event | None:
        """Store one event; None when its unique_id was already recorded (Klaviyo keeps the
        first)."""
        now = datetime.now(UTC).replace(microsecond=0)
        raw = attributes.get("time")
        moment = parse_time(raw).astimezone(UTC).replace(microsecond=0) if raw else now
        if moment.year < 1990 or moment > now + timedelta(days=365):
            raise EventRefused(
                "The time must be after the year 1990 and at most 1 year in the future.", "/time"
            )
        unique = attributes.get("unique_id") or moment.isoformat()
        key = (profile_id, metric.id, unique)
        if key in self.seen:
            return None
        self.seen.add(key)
        event = Event(
            id=event_id,
            metric_id=metric.id,
            profile_id=profile_id,
            datetime=moment.isoformat(),
            timestamp=int(moment.timestamp()),
            properties=dict(attributes.get("properties") or {}),
            unique_id=unique,
            value=attributes.get("value"),
            value_currency=attributes.get("value_currency"),
        )
        self.events.append(event)
        return event

    def dump(self) -> dict[str, Any]:
        return {
            "metrics": [asdict(m) for m in self.metrics.values()],
            "events": [asdict(e) for e in self.events],
            "anonymous": self.anonymous,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.metrics = {m["id"]: Metric(**m) for m in data.get("metrics", [])}
        self.events = [Event(**e) for e in data.get("events", [])]
        self.seen = {(e.profile_id, e.metric_id, e.unique_id) for e in self.events}
        self.anonymous = dict(data.get("anonymous", {}))
