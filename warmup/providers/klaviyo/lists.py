"""The list and consent operations the scenarios need, each through its batch endpoint.

Find or create a list by name; add or remove members (1000 ids per call); import profiles
(10,000 per job, added to a list on the way); subscribe (1000), unsubscribe (100), suppress (100);
read a list's members (100 per page, cursor links) and profiles unsubscribed or suppressed since
a time. Nothing here sends one request per customer where a batch endpoint exists.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from warmup.errors import KlaviyoError, ProviderError
from warmup.providers.klaviyo.client import KlaviyoClient

MAX_LIST_IDS = 1000
MAX_IMPORT = 10_000
MAX_SUBSCRIBE = 1000
MAX_UNSUBSCRIBE = 100
MAX_SUPPRESS = 100
PAGE = 100
SUPPRESSION_TS = "subscriptions.email.marketing.suppression.timestamp"


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def post_all(client: KlaviyoClient, method: str, path: str, bodies: Iterable[Any]) -> int:
    """Send independent batch calls on ``client.workers`` threads: the endpoint's limiter, not
    one slow reply, sets the pace. Returns the number of calls; the first error is raised."""
    items = list(bodies)
    if len(items) <= 1 or client.workers <= 1:
        for body in items:
            client.call(method, path, json=body)
        return len(items)
    with ThreadPoolExecutor(max_workers=client.workers) as pool:
        for _ in pool.map(lambda body: client.call(method, path, json=body), items):
            pass
    return len(items)


def _quote(value: str) -> str:
    return json.dumps(value)


def _items(
    client: KlaviyoClient, url: str, params: dict[str, str] | None
) -> Iterator[dict[str, Any]]:
    """Every resource of a paged read, following Klaviyo's ``links.next`` (which carries the
    query itself, so the parameters go with the first request only)."""
    next_url: str | None = url
    while next_url:
        document = client.get(next_url, params)
        yield from document["data"]
        next_url, params = document["links"].get("next"), None


# lists ------------------------------------------------------------------------------------
def find_list(client: KlaviyoClient, name: str) -> str | None:
    """The id of the oldest list called ``name`` (names need not be unique), or None."""
    params = {"filter": f"equals(name,{_quote(name)})", "sort": "created"}
    for item in _items(client, "/api/lists", params):
        if item["attributes"]["name"] == name:
            return str(item["id"])
    return None


def find_or_create_list(client: KlaviyoClient, name: str) -> tuple[str, bool]:
    """(list id, created?) — a list creation that died mid-air is looked up before retrying,
    so a dropped connection never leaves two lists with one name."""
    for _ in range(client.retry.attempts):
        found = find_list(client, name)
        if found:
            return found, False
        body = {"data": {"type": "list", "attributes": {"name": name}}}
        try:
            document = client.call("POST", "/api/lists", json=body, idempotent=False).json()
        except KlaviyoError as exc:
            if exc.status < 500:
                raise
            continue
        except ProviderError:
            continue
        return str(document["data"]["id"]), True
    raise ProviderError(
        f"could not create the Klaviyo list {name!r}", hint="run `warmup sync PLAN` again"
    )


def add_to_list(client: KlaviyoClient, list_id: str, profile_ids: Sequence[str]) -> int:
    """Add profiles by id; returns the number of calls made."""
    return _members(client, "POST", list_id, profile_ids)


def remove_from_list(client: KlaviyoClient, list_id: str, profile_ids: Sequence[str]) -> int:
    return _members(client, "DELETE", list_id, profile_ids)


def _members(client: KlaviyoClient, method: str, list_id: str, ids: Sequence[str]) -> int:
    bodies = (
        {"data": [{"type": "profile", "id": pid} for pid in batch]}
        for batch in chunks(list(ids), MAX_LIST_IDS)
    )
    return post_all(client, method, f"/api/lists/{list_id}/relationships/profiles", bodies)


@dataclass
class Member:
    id: str
    email: str | None


def iter_members(
    client: KlaviyoClient, list_id: str, emails: Sequence[str] | None = None
) -> Iterator[Member]:
    """Every member of a list (or, with ``emails``, the members among them), 100 per page."""
    if emails is not None:
        for batch in chunks(list(emails), PAGE):
            quoted = ",".join(_quote(e) for e in batch)
            yield from _pages(
                client,
                f"/api/lists/{list_id}/profiles",
                {
                    "filter": f"any(email,[{quoted}])",
                    "page[size]": str(PAGE),
                    "fields[profile]": "email",
                },
            )
        return
    yield from _pages(
        client,
        f"/api/lists/{list_id}/profiles",
        {"page[size]": str(PAGE), "fields[profile]": "email"},
    )


def _pages(client: KlaviyoClient, url: str, params: dict[str, str] | None) -> Iterator[Member]:
    for item in _items(client, url, params):
        yield Member(str(item["id"]), (item.get("attributes") or {}).get("email"))


@dataclass
class ConsentChange:
    id: str
    email: str | None
    reason: str
    timestamp: str


def consent_changes_since(client: KlaviyoClient, since: str) -> Iterator[ConsentChange]:
    """Profiles unsubscribed or suppressed at or after ``since`` (ISO 8601). At, not only
    after: timestamps have whole seconds, so someone unsubscribed in the second of the last
    pull's newest change would be missed for ever; seeing that second again changes nothing."""
    params = {
        "filter": f"greater-or-equal({SUPPRESSION_TS},{since})",
        "page[size]": str(PAGE),
        "additional-fields[profile]": "subscriptions",
    }
    for item in _items(client, "/api/profiles", params):
        attrs = item["attributes"]
        marketing = (attrs.get("subscriptions") or {}).get("email", {}).get("marketing", {})
        for entry in marketing.get("suppression") or []:
            yield ConsentChange(
                str(item["id"]), attrs.get("email"), entry["reason"], entry["timestamp"]
            )


def email_marketing(client: KlaviyoClient, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each email's marketing subscription as Klaviyo holds it (``consent``,
    ``can_receive_email_marketing``), read back 100 emails a request."""
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(set(emails)), PAGE):
        params = {
            "filter": f"any(email,[{','.join(_quote(e) for e in batch)}])",
            "page[size]": str(PAGE),
            "additional-fields[profile]": "subscriptions",
        }
        for item in _items(client, "/api/profiles", params):
            attrs = item["attributes"]
            subs = (attrs.get("subscriptions") or {}).get("email", {}).get("marketing", {})
            found[str(attrs.get("email") or "").lower()] = dict(subs)
    return found


# profiles and jobs ------------------------------------------------------------------------
def profile_attributes(person: dict[str, Any]) -> dict[str, Any]:
    """Store fields → Klaviyo profile attributes (absent values left out, never cleared)."""
    attributes = {
        "email": person.get("email"),
        "phone_number": person.get("phone"),
        "external_id": person.get("external_id"),
        "first_name": person.get("first_name"),
        "last_name": person.get("last_name"),
    }
    return {k: v for k, v in attributes.items() if v not in (None, "")}


@dataclass
class JobOutcome:
    """Per-profile failures of a bulk job, by email: Klaviyo's own message."""

    errors: dict[str, str] = field(default_factory=dict)
    # by the profile's index in the job's payload (``source.pointer``): the reliable key, as
    # ``original_payload`` has no fixed shape and may not carry the email
    by_index: dict[int, str] = field(default_factory=dict)
    calls: int = 0

    def for_rows(self, emails: Sequence[str | None]) -> dict[int, str]:
        """Klaviyo's message per refused position of a job sent with ``emails`` in order."""
        found = {i: d for i, d in self.by_index.items() if 0 <= i < len(emails)}
        for i, email in enumerate(emails):
            detail = self.errors.get((email or "").lower())
            if i not in found and detail is not None:
                found[i] = detail
        return found


def wait_for_import(
    client: KlaviyoClient, job_id: str, *, poll: float = 0.2, timeout: float = 600
) -> JobOutcome:
    """Poll a bulk import job until it completes; collect its import errors."""
    outcome = JobOutcome()
    deadline = time.monotonic() + timeout
    while True:
        document = client.get(f"/api/profile-bulk-import-jobs/{job_id}")
        status = document["data"]["attributes"]["status"]
        if status == "complete":
            break
        if status == "cancelled":
            raise ProviderError(
                f"Klaviyo cancelled bulk import job {job_id}", hint="run `warmup sync PLAN` again"
            )
        if time.monotonic() > deadline:
            raise ProviderError(
                f"bulk import job {job_id} still {status} after {timeout:.0f} s",
                hint="run `warmup sync PLAN` again later",
            )
        time.sleep(poll)
    if document["data"]["attributes"].get("failed_count"):
        errors_url = f"/api/profile-bulk-import-jobs/{job_id}/import-errors"
        for item in _items(client, errors_url, {"page[size]": str(PAGE)}):
            attrs = item["attributes"]
            index = _pointer_index((attrs.get("source") or {}).get("pointer"))
            if index is not None:
                outcome.by_index[index] = attrs["detail"]
            email = _payload_email(attrs.get("original_payload"))
            if email:
                outcome.errors[email.lower()] = attrs["detail"]
    return outcome


_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/|$)")


def _pointer_index(pointer: object) -> int | None:
    match = _POINTER.match(pointer) if isinstance(pointer, str) else None
    return int(match.group(1)) if match else None


def _payload_email(payload: object) -> str | None:
    """The email of an import error's ``original_payload``: the attributes, or the whole
    profile resource (both seen; the OpenAPI document leaves it untyped)."""
    if not isinstance(payload, dict):
        return None
    email = payload.get("email")
    if email is None and isinstance(payload.get("attributes"), dict):
        email = payload["attributes"].get("email")
    return email if isinstance(email, str) else None


def import_profiles(
    client: KlaviyoClient,
    people: Sequence[dict[str, Any]],
    list_id: str | None = None,
    *,
    poll: float = 0.2,
) -> JobOutcome:
    """Create or update profiles through bulk import jobs (10,000 each), optionally joining a
    list; all jobs are submitted before the first is polled."""
    jobs = []
    outcome = JobOutcome()
    for batch in chunks(list(people), MAX_IMPORT):
        body = import_body([profile_attributes(p) for p in batch], list_id)
        document = client.post("/api/profile-bulk-import-jobs", body).json()
        jobs.append(str(document["data"]["id"]))
        outcome.calls += 1
    for offset, job_id in enumerate(jobs):
        done = wait_for_import(client, job_id, poll=poll)
        outcome.errors.update(done.errors)
        for index, detail in done.by_index.items():
            position = offset * MAX_IMPORT + index
            if 0 <= index < MAX_IMPORT and position < len(people):
                outcome.by_index[position] = detail
                email = people[position].get("email")
                if email:
                    outcome.errors.setdefault(str(email).lower(), detail)
    return outcome


def import_body(attributes: Iterable[dict[str, Any]], list_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-bulk-import-job",
        "attributes": {
            "profiles": {"data": [{"type": "profile", "attributes": a} for a in attributes]}
        },
    }
    if list_id:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return {"data": data}


def subscribe(
    client: KlaviyoClient,
    emails: Sequence[str],
    list_id: str | None = None,
    consented_at: str | None = None,
) -> int:
    """Subscribe to email marketing (and join ``list_id``). ``consented_at`` marks a historical
    import: no double opt-in mail, the consent date kept."""
    bodies = []
    for batch in chunks(list(emails), MAX_SUBSCRIBE):
        marketing: dict[str, str] = {"consent": "SUBSCRIBED"}
        if consented_at:
            marketing["consented_at"] = consented_at
        attributes: dict[str, Any] = {
            "profiles": {
                "data": [
                    {
                        "type": "profile",
                        "attributes": {
                            "email": e,
                            "subscriptions": {"email": {"marketing": marketing}},
                        },
                    }
                    for e in batch
                ]
            }
        }
        if consented_at:
            attributes["historical_import"] = True
        data: dict[str, Any] = {
            "type": "profile-subscription-bulk-create-job",
            "attributes": attributes,
        }
        if list_id:
            data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
        bodies.append({"data": data})
    return post_all(client, "POST", "/api/profile-subscription-bulk-create-jobs", bodies)


def unsubscribe(client: KlaviyoClient, emails: Sequence[str], list_id: str | None = None) -> int:
    """Unsubscribe from email marketing. Without ``list_id`` the unsubscribe is global (what a
    consent reject needs); with one, Klaviyo also unsubscribes globally anyone not in it."""
    bodies = []
    for batch in chunks(list(emails), MAX_UNSUBSCRIBE):
        data: dict[str, Any] = {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": e,
                                "subscriptions": {
                                    "email": {"marketing": {"consent": "UNSUBSCRIBED"}}
                                },
                            },
                        }
                        for e in batch
                    ]
                }
            },
        }
        if list_id:
            data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
        bodies.append({"data": data})
    return post_all(client, "POST", "/api/profile-subscription-bulk-delete-jobs", bodies)


def suppress(client: KlaviyoClient, emails: Sequence[str]) -> int:
    bodies = (
        {
            "data": {
                "type": "profile-suppression-bulk-create-job",
                "attributes": {
                    "profiles": {
                        "data": [{"type": "profile", "attributes": {"email": e}} for e in batch]
                    }
                },
            }
        }
        for batch in chunks(list(emails), MAX_SUPPRESS)
    )
    return post_all(client, "POST", "/api/profile-suppression-bulk-create-jobs", bodies)
