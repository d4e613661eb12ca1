"""The shipped operations beyond warmup's own calls: delete a list, update a profile, bulk
unsuppress, and the profiles a bulk import job created or updated."""

from __future__ import annotations

from typing import Any

from warmup.sandbox.handlers import (
    JOB_RUNNERS,
    MAX_SUPPRESS,
    Call,
    Reply,
    _check_emails,
    _conflict,
    _invalid_profile,
    _job,
    _list,
    cursor_after,
    handles,
    invalid,
    job_doc,
    links,
    not_found,
    page_size,
    profile_doc,
)
from warmup.sandbox.state import Account, Conflict, Invalid, Job


@handles("delete_list")
def delete_list(call: Call) -> Reply:
    record = _list(call)
    del call.account.lists[record["id"]]
    call.account.members.pop(record["id"], None)
    return Reply(204)


def _patch_properties(profile: dict[str, Any], patch: dict[str, Any]) -> None:
    """``meta.patch_properties``: append to / remove from list properties, unset keys."""
    properties = profile["attributes"].setdefault("properties", {})
    for key, value in (patch.get("append") or {}).items():
        current = properties.get(key)
        items = current if isinstance(current, list) else ([] if current is None else [current])
        properties[key] = [*items, *(value if isinstance(value, list) else [value])]
    for key, value in (patch.get("unappend") or {}).items():
        current = properties.get(key)
        if isinstance(current, list):
            drop = value if isinstance(value, list) else [value]
            properties[key] = [item for item in current if item not in drop]
    unset = patch.get("unset") or []
    for key in [unset] if isinstance(unset, str) else unset:
        properties.pop(key, None)


@handles("update_profile")
def update_profile(call: Call) -> Reply:
    data = call.body["data"]
    if data["id"] != call.params["id"]:
        raise invalid("The id in the body must match the id in the URL.", "/data/id")
    if data["id"] not in call.account.profiles:
        raise not_found(f"A profile with id {data['id']} does not exist.")
    try:
        profile, _ = call.account.upsert_profile(data.get("attributes") or {}, data["id"])
    except Conflict as exc:
        raise _conflict(exc) from None
    except Invalid as exc:
        raise _invalid_profile(exc) from None
    patch = (data.get("meta") or {}).get("patch_properties")
    if patch:
        _patch_properties(profile, patch)
    doc = profile_doc(call, profile)
    return Reply(200, {"data": doc, "links": doc["links"]})


@handles("bulk_unsuppress_profiles")
def bulk_unsuppress_profiles(call: Call) -> Reply:
    data = call.body["data"]
    profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data", [])
    if len(profiles) > MAX_SUPPRESS:
        raise invalid(
            f"Too many profiles: at most {MAX_SUPPRESS} per request.",
            "/data/attributes/profiles/data",
        )
    _check_emails(profiles)
    relationships = data.get("relationships") or {}
    if "segment" in relationships:
        segment = relationships["segment"]["data"]["id"]
        raise not_found(f"A segment with id {segment} does not exist.")
    lists = []
    if "list" in relationships:
        lid = relationships["list"]["data"]["id"]
        if lid not in call.account.lists:
            raise not_found(f"A list with id {lid} does not exist.")
        lists.append(lid)
    if not profiles and not lists:
        raise invalid("Give profiles, a list or a segment.", "/data")
    emails = [item["attributes"]["email"] for item in profiles]
    for lid in lists:
        members = call.account.members[lid].seq_of
        emails += [
            call.account.profiles[pid]["attributes"]["email"]
            for pid in members
            if call.account.profiles[pid]["attributes"].get("email")
        ]
    job = call.account.queue_job(
        "profile-suppression-bulk-delete-job", {"emails": emails}, len(emails)
    )
    doc = job_doc(call, job)
    return Reply(202, {"data": doc, "links": doc["links"]})


def run_unsuppress(account: Account, job: Job) -> None:
    """Only USER_SUPPRESSED is lifted: unsubscribes, bounces and invalid emails stay."""
    for email in job.payload["emails"]:
        profile = account.profile_by("email", email)
        if profile is None:
            job.failed += 1
            continue
        suppression = profile["suppression"]
        if suppression and suppression["reason"] == "USER_SUPPRESSED":
            profile["suppression"] = None
        job.completed += 1


JOB_RUNNERS["profile-suppression-bulk-delete-job"] = run_unsuppress


def _imported_page(call: Call) -> tuple[list[dict[str, Any]], int | None]:
    job = _job(call, "id")
    if job.type != "profile-bulk-import-job":
        raise not_found(f"A job with id {call.params['id']} does not exist.")
    size = page_size(call, 20, 100)
    after = cursor_after(call)
    ids = [pid for pid in job.payload.get("imported", []) if pid in call.account.profiles]
    window = ids[after : after + size]
    nxt = after + size if after + size < len(ids) else None
    return [call.account.profiles[pid] for pid in window], nxt


@handles("get_profiles_for_bulk_import_profiles_job")
def get_profiles_for_bulk_import_profiles_job(call: Call) -> Reply:
    profiles, nxt = _imported_page(call)
    return Reply(200, {"data": [profile_doc(call, p) for p in profiles], "links": links(call, nxt)})


@handles("get_profile_ids_for_bulk_import_profiles_job")
def get_profile_ids_for_bulk_import_profiles_job(call: Call) -> Reply:
    profiles, nxt = _imported_page(call)
    return Reply(
        200,
        {"data": [{"type": "profile", "id": p["id"]} for p in profiles], "links": links(call, nxt)},
    )
