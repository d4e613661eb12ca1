"""What each Klaviyo operation does to the account, and the JSON:API document it answers.

One function per OpenAPI ``operationId``. Handlers are synchronous and run on the server's one
event loop, so the account needs no locks.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from warmup.sandbox import identity
from warmup.sandbox.state import (
    Account,
    Conflict,
    Invalid,
    Job,
    check_identifiers,
    decode_cursor,
    encode_cursor,
    error_id,
)

MAX_LIST_MEMBERS = 1000
MAX_IMPORT = 10_000
MAX_SUBSCRIBE = 1000
MAX_UNSUBSCRIBE = 100
MAX_SUPPRESS = 100


@dataclass
class ApiError(Exception):
    status: int
    code: str
    title: str
    detail: str
    pointer: str | None = "/data"
    meta: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "id": error_id(),
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "links": {},
            "meta": self.meta,
        }
        if self.pointer is not None:
            error["source"] = {"pointer": self.pointer}
        return {"errors": [error]}


def invalid(detail: str, pointer: str | None = "/data") -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, pointer)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail, "/data/")


@dataclass
class Call:
    """One request as a handler sees it."""

    account: Account
    base_url: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int
    document: dict[str, Any] | None = None


Handler = Callable[[Call], Reply]
HANDLERS: dict[str, Handler] = {}


def handles(op_id: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[op_id] = fn
        return fn

    return register


# filters and paging -----------------------------------------------------------------------
_FILTER = re.compile(r"([a-z-]+)\(([$\w.][$\w. ]*),(\[[^\]]*\]|\"[^\"]*\"|'[^']*'|[^,)]+)\)")


def parse_filter(text: str | None) -> list[tuple[str, str, list[str]]]:
    """``equals(email,"a@b")``, ``any(email,["a","b"])``, comma-joined (AND)."""
    if not text:
        return []
    found = []
    rest = text
    for match in _FILTER.finditer(text):
        op, fld, raw = match.groups()
        raw = raw.strip()
        if raw.startswith("["):
            values = re.findall(r"\"([^\"]*)\"|'([^']*)'", raw)
            items = [a or b for a, b in values]
        else:
            items = [raw.strip("\"'")]
        found.append((op, fld, items))
        rest = rest.replace(match.group(0), "", 1)
    if rest.strip(", "):
        raise invalid(f"Invalid filter provided: {text}", None)
    return found


def page_size(call: Call, default: int, maximum: int) -> int:
    raw = call.query.get("page[size]")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise invalid(f"page[size] must be an integer between 1 and {maximum}.", None)
    return int(raw)


def cursor_after(call: Call) -> int:
    raw = call.query.get("page[cursor]")
    if raw is None:
        return 0
    if call.base_url and raw.startswith(call.base_url + "/"):
        # The official SDK takes the cursor out of an https:// ``links.next`` only and sends an
        # http:// one whole; the sandbox's own links are the only URLs it accepts as a cursor
        # (no Klaviyo link can start with them), so any other URL stays "Invalid cursor".
        raw = parse_qs(urlsplit(raw).query).get("page[cursor]", [""])[0]
    after = decode_cursor(raw)
    if after is None:
        raise invalid("Invalid cursor provided.", None)
    return after


def links(call: Call, next_seq: int | None) -> dict[str, Any]:
    self_url = f"{call.base_url}{call.path}"
    if call.query:
        self_url += "?" + urlencode(call.query)
    nxt = None
    if next_seq is not None:
        query = {**call.query, "page[cursor]": encode_cursor(next_seq)}
        nxt = f"{call.base_url}{call.path.rstrip('/')}/?{urlencode(query)}"
    return {"self": self_url, "next": nxt, "prev": None}


def profile_doc(
    call: Call, profile: dict[str, Any], joined_at: str | None = None
) -> dict[str, Any]:
    attributes = dict(profile["attributes"])
    attributes.setdefault("email", None)
    attributes.setdefault("phone_number", None)
    attributes.setdefault("external_id", None)
    if joined_at is not None:
        attributes["joined_group_at"] = joined_at
    if call.query.get("additional-fields[profile]", "").find("subscriptions") >= 0:
        suppression = [profile["suppression"]] if profile["suppression"] else []
        attributes["subscriptions"] = {
            "email": {
                "marketing": {
                    "can_receive_email_marketing": profile["consent"] == "SUBSCRIBED"
                    and not suppression,
                    "consent": profile["consent"],
                    "suppression": suppression,
                }
            }
        }
    fields = call.query.get("fields[profile]")
    if fields:
        wanted = set(fields.split(","))
        attributes = {k: v for k, v in attributes.items() if k in wanted}
    return {
        "type": "profile",
        "id": profile["id"],
        "attributes": attributes,
        "links": {"self": f"{call.base_url}/api/profiles/{profile['id']}/"},
    }


def list_doc(call: Call, record: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: record[k] for k in ("name", "created", "updated", "opt_in_process")}
    if call.query.get("additional-fields[list]") == "profile_count":
        attributes["profile_count"] = len(call.account.members[record["id"]].seq_of)
    return {
        "type": "list",
        "id": record["id"],
        "attributes": attributes,
        "links": {"self": f"{call.base_url}/api/lists/{record['id']}/"},
    }


def with_included(
    call: Call,
    document: dict[str, Any],
    related: Callable[[dict[str, Any], str], list[dict[str, Any]]] = lambda _, __: [],
) -> dict[str, Any]:
    """``?include=a,b``: each resource's relationships (``related(resource, name)``) and the
    related resources once each in ``included``; by default empty, for what the sandbox does
    not keep (segments, tags, flows, conversations, push tokens)."""
    raw = call.query.get("include")
    if not raw:
        return document
    data = document["data"]
    included: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in data if isinstance(data, list) else [data]:
        base = resource["links"]["self"].rstrip("/")
        relationships = resource.setdefault("relationships", {})
        for name in dict.fromkeys(raw.split(",")):
            found = related(resource, name)
            relationships[name] = {
                "data": [{"type": item["type"], "id": item["id"]} for item in found],
                "links": {"self": f"{base}/relationships/{name}/", "related": f"{base}/{name}/"},
            }
            included.update({(item["type"], item["id"]): item for item in found})
    return {**document, "included": list(included.values())}


def _list(call: Call) -> dict[str, Any]:
    record = call.account.lists.get(call.params["id"])
    if record is None:
        raise not_found(f"A list with id {call.params['id']} does not exist.")
    return record


# lists ------------------------------------------------------------------------------------
@handles("get_lists")
def get_lists(call: Call) -> Reply:
    size = page_size(call, 10, 10)
    after = cursor_after(call)
    records = list(call.account.lists.values())
    for op, fld, values in parse_filter(call.query.get("filter")):
        if fld in ("name", "id") and op in ("equals", "any"):
            records = [r for r in records if r[fld] in values]
        elif fld in ("created", "updated"):
            test = compare_time(op, values[0], operator.itemgetter(fld))
            records = [r for r in records if test(r)]
        else:
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", None)
    records = sorted_by(records, call.query.get("sort"), lambda r, name: r[name])
    window = records[after : after + size]
    nxt = after + size if after + size < len(records) else None
    document = {"data": [list_doc(call, r) for r in window], "links": links(call, nxt)}
    return Reply(200, with_included(call, document))


@handles("create_list")
def create_list(call: Call) -> Reply:
    attributes = call.body["data"]["attributes"]
    record = call.account.create_list(attributes["name"], attributes.get("opt_in_process"))
    return Reply(
        201,
        {
            "data": list_doc(call, record),
            "links": {"self": f"{call.base_url}/api/lists/{record['id']}/"},
        },
    )


@handles("get_list")
def get_list(call: Call) -> Reply:
    doc = list_doc(call, _list(call))
    return Reply(200, with_included(call, {"data": doc, "links": doc["links"]}))


def _member_ids(call: Call) -> list[str]:
    data = call.body["data"]
    if len(data) > MAX_LIST_MEMBERS:
        raise invalid(
            f"Too many profiles: at most {MAX_LIST_MEMBERS} per request, got {len(data)}."
        )
    return [item["id"] for item in data]


@handles("add_profiles_to_list")
def add_profiles_to_list(call: Call) -> Reply:
    record = _list(call)
    ids = _member_ids(call)
    if call.account.strict:
        for pid in ids:
            if pid not in call.account.profiles:
                raise not_found(f"A profile with id {pid} does not exist.")
    # A lenient account answers 204 to unknown ids and adds nobody.
    call.account.add_members(record["id"], ids)
    identity.meddle(call.account, record["id"])
    return Reply(204)


@handles("remove_profiles_from_list")
def remove_profiles_from_list(call: Call) -> Reply:
    record = _list(call)
    call.account.remove_members(record["id"], _member_ids(call))
    return Reply(204)


def _members_page(call: Call) -> tuple[list[dict[str, Any]], int | None, dict[str, str]]:
    """One page of a list's members in join order (``sort=-joined_group_at``: newest first).

    The cursor is a join sequence number in both directions: the page after it in join order,
    or before it when descending, so removals between pages neither skip nor repeat anyone."""
    record = _list(call)
    members = call.account.members[record["id"]]
    size = page_size(call, 20, 100)
    after = cursor_after(call) if "page[cursor]" in call.query else None
    descending = call.query.get("sort") == "-joined_group_at"
    filters = parse_filter(call.query.get("filter"))
    if not filters and not descending:
        ids, nxt = members.page(after or 0, size)
        return [call.account.profiles[pid] for pid in ids], nxt, members.joined_at
    pool: set[str] | None = None
    tests: list[Callable[[str], bool]] = []
    for op, fld, values in filters:
        if fld in ("email", "phone_number"):
            found = {
                profile["id"]
                for profile in (call.account.profile_by(fld, value) for value in values)
                if profile and profile["id"] in members.seq_of
            }
            pool = found if pool is None else pool & found
        elif fld == "joined_group_at":
            tests.append(compare_time(op, values[0], members.joined_at.get))
        elif fld in ("push_token", "_kx"):
            pool = set()  # the sandbox keeps neither push tokens nor tracking cookies
        else:
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", None)
    ids = sorted(
        (pid for pid in (members.seq_of if pool is None else pool) if all(t(pid) for t in tests)),
        key=lambda pid: members.seq_of[pid],
        reverse=descending,
    )
    if after is not None:
        ids = [
            pid
            for pid in ids
            if (members.seq_of[pid] < after if descending else members.seq_of[pid] > after)
        ]
    nxt = members.seq_of[ids[size - 1]] if len(ids) > size else None
    return [call.account.profiles[pid] for pid in ids[:size]], nxt, members.joined_at


@handles("get_profiles_for_list")
def get_profiles_for_list(call: Call) -> Reply:
    profiles, nxt, joined = _members_page(call)
    return Reply(
        200,
        {
            "data": [profile_doc(call, p, joined[p["id"]]) for p in profiles],
            "links": links(call, nxt),
        },
    )


@handles("get_profile_ids_for_list")
def get_profile_ids_for_list(call: Call) -> Reply:
    profiles, nxt, _ = _members_page(call)
    return Reply(
        200,
        {"data": [{"type": "profile", "id": p["id"]} for p in profiles], "links": links(call, nxt)},
    )


# profiles ---------------------------------------------------------------------------------
_SUPPRESSION = "subscriptions.email.marketing.suppression."
_LIST_SUPPRESSION = "subscriptions.email.marketing.list_suppressions."
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "greater-than": lambda a, b: bool(a > b),
    "greater-or-equal": lambda a, b: bool(a >= b),
    "less-than": lambda a, b: bool(a < b),
    "less-or-equal": lambda a, b: bool(a <= b),
}


def moment(value: str) -> datetime:
    """A filter's date-time (``Z``, an offset or none = UTC), or Klaviyo's 400."""
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid date-time '{value}' in filter.", None) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def compare_time(op: str, value: str, read: Callable[[Any], str | None]) -> Callable[[Any], bool]:
    """A test ``read(item) <op> value`` on ISO date-times; an item without one never matches."""
    bound = moment(value)

    def test(item: Any) -> bool:
        stamp = read(item)
        return stamp is not None and _COMPARE[op](moment(stamp), bound)

    return test


def _suppression(profile: dict[str, Any], key: str) -> str | None:
    found = (profile["suppression"] or {}).get(key)
    return None if found is None else str(found)


def sorted_by(items: list[Any], sort: str | None, key: Callable[[Any, str], Any]) -> list[Any]:
    """Klaviyo's ``sort=field`` / ``sort=-field``; items without a value come last either way."""
    if not sort:
        return items
    name = sort.lstrip("-")
    present = [item for item in items if key(item, name) is not None]
    missing = [item for item in items if key(item, name) is None]
    return sorted(present, key=lambda item: key(item, name), reverse=sort.startswith("-")) + missing


def _attribute(name: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda profile: profile["attributes"].get(name)


def _reason_is(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda profile: _suppression(profile, "reason") == reason


def _profile_key(profile: dict[str, Any], name: str) -> Any:
    if name == "id":
        return profile["id"]
    if name == _SUPPRESSION + "timestamp":
        return _suppression(profile, "timestamp")
    if name.startswith(_LIST_SUPPRESSION):
        return None  # the sandbox keeps no per-list suppressions
    return profile["attributes"].get(name)


@handles("get_profiles")
def get_profiles(call: Call) -> Reply:
    size = page_size(call, 20, 100)
    after = cursor_after(call)
    candidates: list[dict[str, Any]] | None = None
    tests: list[Callable[[dict[str, Any]], bool]] = []
    # Fields and operators are checked against the document before the handler runs.
    for op, fld, values in parse_filter(call.query.get("filter")):
        if fld in ("email", "phone_number", "external_id"):
            found = [call.account.profile_by(fld, v) for v in values]
            candidates = [p for p in found if p is not None]
        elif fld == "id":
            candidates = [call.account.profiles[v] for v in values if v in call.account.profiles]
        elif fld in ("created", "updated"):
            tests.append(compare_time(op, values[0], _attribute(fld)))
        elif fld == _SUPPRESSION + "timestamp":
            tests.append(compare_time(op, values[0], lambda p: _suppression(p, "timestamp")))
        elif fld == _SUPPRESSION + "reason":
            tests.append(_reason_is(values[0]))
        elif fld == "_kx" or fld.startswith(_LIST_SUPPRESSION):
            # No tracking cookies and no per-list suppressions in the sandbox: nothing matches.
            tests.append(lambda p: False)
        else:
            raise invalid(f"'{op}' is not a valid operator for '{fld}'.", None)
    pool = list(call.account.profiles.values()) if candidates is None else candidates
    chosen = [p for p in pool if all(test(p) for test in tests)]
    chosen = sorted_by(chosen, call.query.get("sort"), _profile_key)
    window = chosen[after : after + size]
    nxt = after + size if after + size < len(chosen) else None
    document = {"data": [profile_doc(call, p) for p in window], "links": links(call, nxt)}
    return Reply(200, with_included(call, document, _profile_related(call)))


def _profile_related(call: Call) -> Callable[[dict[str, Any], str], list[dict[str, Any]]]:
    def related(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
        if name != "lists":  # no segments, conversations or push tokens in the sandbox
            return []
        return [
            list_doc(call, record)
            for lid, record in call.account.lists.items()
            if resource["id"] in call.account.members[lid].seq_of
        ]

    return related


@handles("get_profile")
def get_profile(call: Call) -> Reply:
    profile = call.account.profiles.get(call.params["id"])
    if profile is None:
        raise not_found(f"A profile with id {call.params['id']} does not exist.")
    doc = profile_doc(call, profile)

    return Reply(
        200, with_included(call, {"data": doc, "links": doc["links"]}, _profile_related(call))
    )


def _conflict(exc: Conflict) -> ApiError:
    return ApiError(
        409,
        "duplicate_profile",
        "Conflict.",
        "A profile already exists with one of these identifiers.",
        "/data/attributes",
        {"duplicate_profile_id": exc.profile_id},
    )


def _invalid_profile(exc: Invalid, prefix: str = "/data") -> ApiError:
    return invalid(exc.detail, prefix + exc.pointer)


@handles("create_profile")
def create_profile(call: Call) -> Reply:
    try:
        profile = call.account.create_profile(call.body["data"]["attributes"])
    except Conflict as exc:
        raise _conflict(exc) from None
    except Invalid as exc:
        raise _invalid_profile(exc) from None
    doc = profile_doc(call, profile)
    return Reply(201, {"data": doc, "links": doc["links"]})


@handles("create_or_update_profile")
def create_or_update_profile(call: Call) -> Reply:
    data = call.body["data"]
    try:
        profile, created = call.account.upsert_profile(data["attributes"], data.get("id"))
    except Conflict as exc:
        raise _conflict(exc) from None
    except Invalid as exc:
        raise _invalid_profile(exc) from None
    except KeyError:
        raise not_found(f"A profile with id {data.get('id')} does not exist.") from None
    doc = profile_doc(call, profile)
    return Reply(201 if created else 200, {"data": doc, "links": doc["links"]})


# bulk jobs --------------------------------------------------------------------------------
def _job_profiles(call: Call, maximum: int) -> list[dict[str, Any]]:
    profiles: list[dict[str, Any]] = call.body["data"]["attributes"]["profiles"]["data"]
    if len(profiles) > maximum:
        raise invalid(
            f"Too many profiles: at most {maximum} per request, got {len(profiles)}.",
            "/data/attributes/profiles/data",
        )
    return profiles


def _list_relation(call: Call, key: str) -> list[str]:
    relation = call.body["data"].get("relationships", {}).get(key, {}).get("data")
    if relation is None:
        return []
    ids = [r["id"] for r in relation] if isinstance(relation, list) else [relation["id"]]
    for lid in ids:
        if lid not in call.account.lists:
            raise not_found(f"A list with id {lid} does not exist.")
    return ids


def job_doc(call: Call, job: Job) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "status": job.status,
        "created_at": job.created_at,
        "total_count": job.total,
        "completed_count": job.completed,
        "completed_at": job.completed_at,
    }
    if job.type == "profile-bulk-import-job":
        attributes.update(failed_count=job.failed, started_at=job.created_at, expires_at=None)
    else:
        attributes["skipped_count"] = job.failed
    path = f"{job.type}s"
    return {
        "type": job.type,
        "id": job.id,
        "attributes": attributes,
        "links": {"self": f"{call.base_url}/api/{path}/{job.id}/"},
    }


@handles("bulk_import_profiles")
def bulk_import_profiles(call: Call) -> Reply:
    profiles = _job_profiles(call, MAX_IMPORT)
    lists = _list_relation(call, "lists")
    job = call.account.queue_job(
        "profile-bulk-import-job", {"profiles": profiles, "lists": lists}, len(profiles)
    )
    doc = job_doc(call, job)
    return Reply(202, {"data": doc, "links": doc["links"]})


def run_import(account: Account, job: Job) -> None:
    imported: list[str] = []
    for index, item in enumerate(job.payload["profiles"]):
        try:
            profile, _ = account.upsert_profile(item["attributes"], item.get("id"))
        except Invalid as exc:
            _job_error(job, "invalid", "Invalid input.", exc.detail, exc.pointer, item, index=index)
            continue
        except Conflict:
            _job_error(
                job,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
                "/attributes",
                item,
                index=index,
            )
            continue
        except KeyError:
            _job_error(
                job,
                "not_found",
                "Not found.",
                "A profile with that id does not exist.",
                "/id",
                item,
                index=index,
            )
            continue
        imported.append(profile["id"])
        job.completed += 1
    job.payload["imported"] = imported  # read by the job's profiles endpoints
    for lid in job.payload["lists"]:
        if lid in account.lists:
            account.add_members(lid, imported)
            identity.meddle(account, lid)


def _job_error(
    job: Job,
    code: str,
    title: str,
    detail: str,
    pointer: str,
    item: dict[str, Any],
    *,
    index: int | None = None,
) -> None:
    job.failed += 1
    job.errors.append(
        {
            "type": "import-error",
            "id": error_id(),
            "attributes": {
                "code": code,
                "title": title,
                "detail": detail,
                "source": {
                    "pointer": pointer if index is None else identity.import_pointer(index, pointer)
                },
                "original_payload": (
                    item.get("attributes")
                    if index is None
                    else identity.error_payload(item, job.failed)
                ),
            },
        }
    )


def _job(call: Call, key: str) -> Job:
    job = call.account.jobs.get(call.params[key])
    if job is None:
        raise not_found(f"A job with id {call.params[key]} does not exist.")
    return job


@handles("get_bulk_import_profiles_job")
def get_bulk_import_profiles_job(call: Call) -> Reply:
    doc = job_doc(call, _job(call, "job_id"))
    return Reply(200, {"data": doc, "links": doc["links"]})


@handles("get_bulk_suppress_profiles_job")
def get_bulk_suppress_profiles_job(call: Call) -> Reply:
    doc = job_doc(call, _job(call, "job_id"))
    return Reply(200, {"data": doc, "links": doc["links"]})


@handles("get_errors_for_bulk_import_profiles_job")
def get_errors_for_bulk_import_profiles_job(call: Call) -> Reply:
    job = _job(call, "id")
    size = page_size(call, 20, 100)
    after = cursor_after(call)
    window = job.errors[after : after + size]
    nxt = after + size if after + size < len(job.errors) else None
    return Reply(200, {"data": window, "links": links(call, nxt)})


def _check_emails(profiles: list[dict[str, Any]], *, strict: bool = False) -> None:
    """Subscription jobs validate identifiers synchronously: the whole call is a 400."""
    for i, item in enumerate(profiles):
        try:
            check_identifiers(item["attributes"], strict=strict)
        except Invalid as exc:
            raise invalid(exc.detail, f"/data/attributes/profiles/data/{i}{exc.pointer}") from None


@handles("bulk_subscribe_profiles")
def bulk_subscribe_profiles(call: Call) -> Reply:
    profiles = _job_profiles(call, MAX_SUBSCRIBE)
    _check_emails(profiles, strict=call.account.strict)
    historical = call.body["data"]["attributes"].get("historical_import", False)
    for i, item in enumerate(profiles):
        marketing = (
            item["attributes"].get("subscriptions", {}).get("email", {}).get("marketing", {})
        )
        if historical and "consented_at" not in marketing:
            raise invalid(
                "consented_at is required when historical_import is true.",
                f"/data/attributes/profiles/data/{i}/attributes/subscriptions",
            )
        if not historical and "consented_at" in marketing:
            raise invalid(
                "consented_at is only allowed when historical_import is true.",
                f"/data/attributes/profiles/data/{i}/attributes/subscriptions",
            )
    lists = _list_relation(call, "list")
    call.account.queue_job("subscribe", {"profiles": profiles, "lists": lists}, len(profiles))
    return Reply(202)


def run_subscribe(account: Account, job: Job) -> None:
    ids = []
    for item in job.payload["profiles"]:
        attributes = {k: v for k, v in item["attributes"].items() if k in ("email", "phone_number")}
        try:
            profile, _ = account.upsert_profile(attributes, item.get("id"))
        except (Conflict, KeyError, Invalid):
            continue
        account.subscribe(profile)
        ids.append(profile["id"])
    # A list deleted while the job was queued: the profiles are still subscribed, without the
    # list (the job is accepted, so Klaviyo has nothing left to answer with but its effect).
    for lid in job.payload["lists"]:
        if lid in account.lists:
            account.add_members(lid, ids)


@handles("bulk_unsubscribe_profiles")
def bulk_unsubscribe_profiles(call: Call) -> Reply:
    profiles = _job_profiles(call, MAX_UNSUBSCRIBE)
    _check_emails(profiles, strict=call.account.strict)
    lists = _list_relation(call, "list")
    call.account.queue_job("unsubscribe", {"profiles": profiles, "lists": lists}, len(profiles))
    return Reply(202)


def run_unsubscribe(account: Account, job: Job) -> None:
    for item in job.payload["profiles"]:
        attributes = {k: v for k, v in item["attributes"].items() if k in ("email", "phone_number")}
        try:
            profile, _ = account.upsert_profile(attributes)
        except (Conflict, Invalid):
            continue
        # Klaviyo (2025-07-15+): a profile not in the given list is unsubscribed globally; the
        # sandbox keeps one consent per profile, so both cases end UNSUBSCRIBED.
        account.unsubscribe(profile)
        for lid in job.payload["lists"]:
            if lid in account.lists:  # deleted while queued: unsubscribed all the same
                account.remove_members(lid, [profile["id"]])


@handles("bulk_suppress_profiles")
def bulk_suppress_profiles(call: Call) -> Reply:
    attributes = call.body["data"]["attributes"]
    profiles = attributes.get("profiles", {}).get("data", []) if attributes else []
    if len(profiles) > MAX_SUPPRESS:
        raise invalid(
            f"Too many profiles: at most {MAX_SUPPRESS} per request.",
            "/data/attributes/profiles/data",
        )
    _check_emails(profiles, strict=call.account.strict)
    job = call.account.queue_job(
        "profile-suppression-bulk-create-job", {"profiles": profiles}, len(profiles)
    )
    doc = job_doc(call, job)
    return Reply(202, {"data": doc, "links": doc["links"]})


def run_suppress(account: Account, job: Job) -> None:
    for item in job.payload["profiles"]:
        try:
            profile, _ = account.upsert_profile({"email": item["attributes"]["email"]})
        except (Conflict, Invalid):
            job.failed += 1
            continue
        account.suppress(profile)
        job.completed += 1


JOB_RUNNERS: dict[str, Callable[[Account, Job], None]] = {
    "profile-bulk-import-job": run_import,
    "subscribe": run_subscribe,
    "unsubscribe": run_unsubscribe,
    "profile-suppression-bulk-create-job": run_suppress,
}


def settle(account: Account) -> None:
    account.settle(lambda job: JOB_RUNNERS[job.type](account, job))
