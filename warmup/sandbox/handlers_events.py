"""Events and metrics: create (one or in bulk, accepted 202 and recorded by a job), read back
(filtered, sorted, cursor-paged, with ``include``) and aggregated by ``query_metric_aggregates``.

Shapes from the shipped OpenAPI documents; choices where Klaviyo's behaviour is unconfirmed are
named in the README (default order: oldest first; one page of aggregate rows).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warmup.sandbox import spec
from warmup.sandbox.events import Event, EventRefused, Metric, parse_time
from warmup.sandbox.handlers import (
    JOB_RUNNERS,
    Call,
    Reply,
    cursor_after,
    handles,
    invalid,
    links,
    not_found,
    page_size,
    parse_filter,
    profile_doc,
    with_included,
)
from warmup.sandbox.state import Account, Conflict, Invalid, Job, check_identifiers, new_ulid

MAX_BULK_EVENTS = 1000
MAX_METRIC_NAME = 128
_PROFILE_KEYS = ("email", "phone_number", "external_id")
_DROPPED_PROFILE_KEYS = ("meta", "anonymous_id", "_kx")


# create -----------------------------------------------------------------------------------
def _check_event(attributes: dict[str, Any], pointer: str) -> None:
    """The synchronous 400s: metric name, time range, identifiers."""
    name = attributes["metric"]["data"]["attributes"]["name"]
    if len(name) >= MAX_METRIC_NAME:
        raise invalid(
            f"Metric name must be less than {MAX_METRIC_NAME} characters.",
            f"{pointer}/metric/data/attributes/name",
        )
    raw = attributes.get("time")
    if raw:
        moment = parse_time(raw)
        if moment.year < 1990 or moment > datetime.now(UTC) + timedelta(days=365):
            raise invalid(
                "The time must be after the year 1990 and at most 1 year in the future.",
                f"{pointer}/time",
            )


def _check_profile(profile: dict[str, Any], pointer: str) -> None:
    attributes = profile.get("attributes") or {}
    if not profile.get("id") and not any(
        attributes.get(k) for k in (*_PROFILE_KEYS, "anonymous_id", "_kx")
    ):
        raise invalid(
            "One of id, email, phone_number, external_id, anonymous_id or _kx is required.",
            f"{pointer}/attributes",
        )
    try:
        check_identifiers(attributes)
    except Invalid as exc:
        raise invalid(exc.detail, pointer + exc.pointer) from None


@handles("create_event")
def create_event(call: Call) -> Reply:
    attributes = call.body["data"]["attributes"]
    _check_event(attributes, "/data/attributes")
    profile = attributes["profile"]["data"]
    _check_profile(profile, "/data/attributes/profile/data")
    call.account.queue_job("event", {"entries": [(profile, [attributes])]}, 1)
    return Reply(202)


@handles("bulk_create_events")
def bulk_create_events(call: Call) -> Reply:
    groups = call.body["data"]["attributes"]["events-bulk-create"]["data"]
    total = sum(len(group["attributes"]["events"]["data"]) for group in groups)
    if total > MAX_BULK_EVENTS:
        raise invalid(
            f"Too many events: at most {MAX_BULK_EVENTS} per request, got {total}.",
            "/data/attributes/events-bulk-create/data",
        )
    entries = []
    for i, group in enumerate(groups):
        base = f"/data/attributes/events-bulk-create/data/{i}/attributes"
        profile = group["attributes"]["profile"]["data"]
        _check_profile(profile, f"{base}/profile/data")
        events = [item["attributes"] for item in group["attributes"]["events"]["data"]]
        for j, event in enumerate(events):
            _check_event(event, f"{base}/events/data/{j}/attributes")
        entries.append((profile, events))
    call.account.queue_job("event", {"entries": entries}, total)
    return Reply(202)


def _profile_for(account: Account, profile: dict[str, Any]) -> str | None:
    attributes = {
        k: v for k, v in (profile.get("attributes") or {}).items() if k not in _DROPPED_PROFILE_KEYS
    }
    anonymous = (profile.get("attributes") or {}).get("anonymous_id")
    if not profile.get("id") and not any(attributes.get(k) for k in _PROFILE_KEYS) and anonymous:
        known = account.events.anonymous.get(anonymous)
        if known in account.profiles:
            return known
        created = account.create_profile(attributes)
        account.events.anonymous[anonymous] = created["id"]
        return str(created["id"])
    try:
        found, _ = account.upsert_profile(attributes, profile.get("id"))
    except (Conflict, Invalid, KeyError):
        return None
    return str(found["id"])


def run_events(account: Account, job: Job) -> None:
    for profile, events in job.payload["entries"]:
        profile_id = _profile_for(account, profile)
        if profile_id is None:
            job.failed += len(events)
            continue
        for attributes in events:
            metric_data = attributes["metric"]["data"]["attributes"]
            metric = account.events.metric_named(
                metric_data["name"], metric_data.get("service") or "api", account.rng
            )
            try:
                account.events.record(attributes, metric, profile_id, new_ulid(account.rng))
            except EventRefused:
                job.failed += 1
                continue
            job.completed += 1


JOB_RUNNERS["event"] = run_events


# read -------------------------------------------------------------------------------------
def metric_doc(call: Call, metric: Metric) -> dict[str, Any]:
    name = "API" if metric.service == "api" else metric.service
    return {
        "type": "metric",
        "id": metric.id,
        "attributes": {
            "name": metric.name,
            "created": metric.created,
            "updated": metric.updated,
            "integration": {
                "object": "integration",
                "id": metric.service,
                "name": name,
                "category": "API" if metric.service == "api" else "Custom",
            },
        },
        "links": {"self": f"{call.base_url}/api/metrics/{metric.id}/"},
    }


def event_doc(call: Call, event: Event) -> dict[str, Any]:
    properties = dict(event.properties)
    properties["$event_id"] = event.unique_id
    if event.value is not None:
        properties["$value"] = event.value
    attributes: dict[str, Any] = {
        "timestamp": event.timestamp,
        "event_properties": properties,
        "datetime": event.datetime,
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, event.id)),
    }
    fields = call.query.get("fields[event]")
    if fields:
        wanted = set(fields.split(","))
        attributes = {k: v for k, v in attributes.items() if k in wanted}
    base = f"{call.base_url}/api/events/{event.id}"
    return {
        "type": "event",
        "id": event.id,
        "attributes": attributes,
        "relationships": {
            "profile": {
                "data": {"type": "profile", "id": event.profile_id},
                "links": {"self": f"{base}/relationships/profile/", "related": f"{base}/profile/"},
            },
            "metric": {
                "data": {"type": "metric", "id": event.metric_id},
                "links": {"self": f"{base}/relationships/metric/", "related": f"{base}/metric/"},
            },
        },
        "links": {"self": f"{base}/"},
    }


_INCLUDES = ("metric", "profile", "attributions")


def _with_included(call: Call, document: dict[str, Any], events: list[Event]) -> dict[str, Any]:
    """``document`` with the ``included`` resources that ``?include=`` asks for, if any."""
    raw = call.query.get("include")
    if not raw:
        return document
    wanted = raw.split(",")
    for name in wanted:
        if name not in _INCLUDES:
            raise invalid(f"'{name}' is not a valid relationship for 'event'.", None)
    out: list[dict[str, Any]] = []
    if "metric" in wanted:
        for mid in dict.fromkeys(e.metric_id for e in events):
            out.append(metric_doc(call, call.account.events.metrics[mid]))
    if "profile" in wanted:
        for pid in dict.fromkeys(e.profile_id for e in events):
            if pid in call.account.profiles:
                out.append(profile_doc(call, call.account.profiles[pid]))
    return {**document, "included": out}


_COMPARE = {
    "greater-than": lambda a, b: a > b,
    "greater-or-equal": lambda a, b: a >= b,
    "less-than": lambda a, b: a < b,
    "less-or-equal": lambda a, b: a <= b,
}


def _event_filter(text: str | None) -> list[Any]:
    tests: list[Any] = []
    for op, fld, values in parse_filter(text):
        value = values[0] if values else ""
        if fld in ("metric_id", "profile_id") and op == "equals":
            tests.append(lambda e, f=fld, v=value: getattr(e, f) == v)
        elif fld == "datetime" and op in _COMPARE:
            try:
                bound = parse_time(value).timestamp()
            except ValueError:
                raise invalid(f"Invalid date-time '{value}' in filter.", None) from None
            tests.append(lambda e, c=_COMPARE[op], b=bound: c(e.timestamp, b))
        elif fld == "timestamp" and op in _COMPARE:
            if not value.lstrip("-").isdigit():
                raise invalid(f"Invalid timestamp '{value}' in filter.", None)
            tests.append(lambda e, c=_COMPARE[op], b=int(value): c(e.timestamp, b))
        else:
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", None)
    return tests


@handles("get_events")
def get_events(call: Call) -> Reply:
    size = page_size(call, 200, 1000)
    after = cursor_after(call)
    tests = _event_filter(call.query.get("filter"))
    sort = call.query.get("sort", "datetime")
    if sort.lstrip("-") not in ("datetime", "timestamp"):
        raise invalid(f"'{sort}' is not a valid sort field for 'event'.", None)
    chosen = [e for e in call.account.events.events if all(test(e) for test in tests)]
    chosen.sort(key=lambda e: e.timestamp, reverse=sort.startswith("-"))
    window = chosen[after : after + size]
    nxt = after + size if after + size < len(chosen) else None
    document = {"data": [event_doc(call, e) for e in window], "links": links(call, nxt)}
    return Reply(200, _with_included(call, document, window))


@handles("get_event")
def get_event(call: Call) -> Reply:
    found = [e for e in call.account.events.events if e.id == call.params["id"]]
    if not found:
        raise not_found(f"An event with id {call.params['id']} does not exist.")
    doc = event_doc(call, found[0])
    return Reply(200, _with_included(call, {"data": doc, "links": doc["links"]}, found))


@handles("get_metrics")
def get_metrics(call: Call) -> Reply:
    after = cursor_after(call)
    metrics = list(call.account.events.metrics.values())
    for op, fld, values in parse_filter(call.query.get("filter")):
        if op != "equals" or fld not in ("integration.name", "integration.category"):
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", None)
        key = "name" if fld == "integration.name" else "category"
        metrics = [
            m for m in metrics if metric_doc(call, m)["attributes"]["integration"][key] in values
        ]
    size = 200
    window = metrics[after : after + size]
    nxt = after + size if after + size < len(metrics) else None
    document = {"data": [metric_doc(call, m) for m in window], "links": links(call, nxt)}
    return Reply(200, with_included(call, document))


@handles("get_metric")
def get_metric(call: Call) -> Reply:
    metric = call.account.events.metrics.get(call.params["id"])
    if metric is None:
        raise not_found(f"A metric with id {call.params['id']} does not exist.")
    doc = metric_doc(call, metric)
    # No flows in the sandbox: ``include=flow-triggers`` answers an empty relationship.
    return Reply(200, with_included(call, {"data": doc, "links": doc["links"]}))


# aggregates -------------------------------------------------------------------------------
_ATTR = "/data/attributes"


def _bucket_starts(start: datetime, end: datetime, interval: str) -> list[datetime]:
    def floor(moment: datetime) -> datetime:
        moment = moment.replace(minute=0, second=0, microsecond=0)
        if interval == "hour":
            return moment
        moment = moment.replace(hour=0)
        if interval == "week":
            return moment - timedelta(days=moment.weekday())
        if interval == "month":
            return moment.replace(day=1)
        return moment

    def step(moment: datetime) -> datetime:
        if interval == "hour":
            # Real hours, not wall-clock ones: a day with a daylight-saving change has 23 or 25.
            return (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(moment.tzinfo)
        if interval == "week":
            return moment + timedelta(days=7)
        if interval == "month":
            year, month = divmod(moment.month, 12)
            return moment.replace(year=moment.year + year, month=month + 1)
        return moment + timedelta(days=1)

    starts = [floor(start)]
    while step(starts[-1]) < end:
        starts.append(step(starts[-1]))
    return starts


@lru_cache(maxsize=1)
def aggregate_dimensions() -> frozenset[str]:
    """The document's "dimensions for grouping and filtering" (the enum of ``by``): the only
    fields besides ``datetime`` a filter may name. The sandbox reads them from event
    properties (``$attributed_message``, ``$flow``, ``Subject``…)."""
    document = json.loads((spec.OPENAPI_DIR / "query_metric_aggregates.json").read_text())
    schema = document["components"]["schemas"]["MetricAggregateQueryResourceObject"]
    return frozenset(schema["properties"]["attributes"]["properties"]["by"]["items"]["enum"])


@handles("query_metric_aggregates")
def query_metric_aggregates(call: Call) -> Reply:
    attributes = call.body["data"]["attributes"]
    metric = call.account.events.metrics.get(attributes["metric_id"])
    if metric is None:
        raise not_found(f"A metric with id {attributes['metric_id']} does not exist.")
    try:
        zone = ZoneInfo(attributes.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid("Invalid timezone.", f"{_ATTR}/timezone") from None
    start: datetime | None = None
    end: datetime | None = None
    equals: list[tuple[str, list[str]]] = []
    for i, text in enumerate(attributes["filter"]):
        for op, fld, values in parse_filter(text):
            if fld == "datetime" and op in ("greater-or-equal", "less-than"):
                try:
                    moment = datetime.fromisoformat(values[0].replace("Z", "+00:00"))
                except ValueError:
                    raise invalid(
                        f"Invalid date-time '{values[0]}'.", f"{_ATTR}/filter/{i}"
                    ) from None
                # A time without an offset is read in the query's timezone.
                moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
                if op == "greater-or-equal":
                    start = moment
                else:
                    end = moment
            elif op in ("equals", "any") and fld in aggregate_dimensions():
                equals.append((fld, values))
            elif fld not in aggregate_dimensions() and fld != "datetime":
                raise invalid(
                    f"'{fld}' is not a valid field for filtering metric aggregates; allowed: "
                    f"datetime and the dimensions of 'by'.",
                    f"{_ATTR}/filter/{i}",
                )
            else:
                raise invalid(f"'{op}' is not a valid operator for '{fld}'.", f"{_ATTR}/filter/{i}")
    if start is None or end is None or end <= start:
        raise invalid(
            "The filter must give a time range: greater-or-equal(datetime,…) and "
            "less-than(datetime,…).",
            f"{_ATTR}/filter",
        )
    if end - start > timedelta(days=366):
        raise invalid("The time range must not exceed one year.", f"{_ATTR}/filter")
    interval = attributes.get("interval") or "day"
    starts = _bucket_starts(start.astimezone(zone), end.astimezone(zone), interval)
    edges = [s.timestamp() for s in starts] + [end.timestamp()]
    by: list[str] = attributes.get("by") or []
    rows: dict[tuple[str, ...], list[list[Event]]] = defaultdict(lambda: [[] for _ in starts])
    for event in call.account.events.events:
        if event.metric_id != metric.id or not start.timestamp() <= event.timestamp < edges[-1]:
            continue
        if any(str(event.properties.get(f)) not in v for f, v in equals):
            continue
        slot = max(i for i, edge in enumerate(edges[:-1]) if event.timestamp >= edge)
        dims = tuple(str(event.properties.get(d, "")) for d in by)
        rows[dims][slot].append(event)
    measurements: list[str] = attributes["measurements"]
    data: list[dict[str, Any]] = []
    for dims, buckets in sorted(rows.items()):
        figures: dict[str, list[float]] = {}
        for name in measurements:
            if name == "count":
                figures[name] = [float(len(b)) for b in buckets]
            elif name == "unique":
                figures[name] = [float(len({e.profile_id for e in b})) for b in buckets]
            else:
                figures[name] = [float(sum(e.value or 0 for e in b)) for b in buckets]
        data.append({"dimensions": list(dims), "measurements": figures})
    if not by and not data:
        data.append(
            {"dimensions": [], "measurements": {name: [0.0] * len(starts) for name in measurements}}
        )
    self_url = f"{call.base_url}/api/metric-aggregates/"
    return Reply(
        200,
        {
            "data": {
                "type": "metric-aggregate",
                "id": str(uuid.uuid4()),
                "attributes": {"dates": [s.isoformat() for s in starts], "data": data},
                "links": {"self": self_url},
            },
            "links": {"self": self_url},
        },
    )
