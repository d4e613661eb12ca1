"""Issue 18, second pass (a new user's findings): a job whose list is deleted while it is queued,
the documented sorts, filters and includes of the reads, metric-aggregate filter fields, the
SDK's ``links.next`` as a cursor, and injected faults that look like Klaviyo's own."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from warmup.sandbox import RunningSandbox, SandboxConfig, revisions, serve_in_thread

SUBSCRIPTIONS = {"additional-fields[profile]": "subscriptions"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=181)) as running:
        yield running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": f"Klaviyo-API-Key {sandbox.api_key}",
        "revision": revisions.STABLE_REVISION,
        "content-type": "application/vnd.api+json",
    }
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as http:
        yield http


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    return dict(error)


def new_list(client: httpx.Client, name: str) -> str:
    body = {"data": {"type": "list", "attributes": {"name": name}}}
    return str(ok(client.post("/api/lists", json=body), 201)["data"]["id"])


def new_profile(client: httpx.Client, email: str) -> str:
    body = {"data": {"type": "profile", "attributes": {"email": email}}}
    return str(ok(client.post("/api/profiles", json=body), 201)["data"]["id"])


def add(client: httpx.Client, list_id: str, *ids: str) -> None:
    body = {"data": [{"type": "profile", "id": pid} for pid in ids]}
    ok(client.post(f"/api/lists/{list_id}/relationships/profiles", json=body), 204)


def ids(document: dict[str, Any]) -> list[str]:
    return [item["id"] for item in document["data"]]


def pages(client: httpx.Client, path: str, params: dict[str, str]) -> list[str]:
    """Every id of a cursor-paged read, following ``links.next`` as a client would."""
    found: list[str] = []
    url: str | None = path
    query: dict[str, str] | None = params
    while url:
        document = ok(client.get(url, params=query))
        found += ids(document)
        url, query = document["links"]["next"], None
    return found


def _consenting(email: str, consent: str) -> dict[str, Any]:
    marketing = {"email": {"marketing": {"consent": consent}}}
    return {"type": "profile", "attributes": {"email": email, "subscriptions": marketing}}


# 1. a queued job whose list is deleted --------------------------------------------------------
def test_subscribe_and_unsubscribe_jobs_outlive_their_deleted_list(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    """The accepted jobs still change consent; only the membership is gone with the list."""
    account = sandbox.app.account
    list_id = new_list(client, "doomed")
    gone = new_profile(client, "gone@example.com")
    add(client, list_id, gone)
    account.job_delay = 60.0  # keep both jobs queued until the list is deleted
    subscribe = {
        "type": "profile-subscription-bulk-create-job",
        "attributes": {"profiles": {"data": [_consenting("new@example.com", "SUBSCRIBED")]}},
        "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
    }
    unsubscribe = {
        "type": "profile-subscription-bulk-delete-job",
        "attributes": {"profiles": {"data": [_consenting("gone@example.com", "UNSUBSCRIBED")]}},
        "relationships": {"list": {"data": {"type": "list", "id": list_id}}},
    }
    ok(client.post("/api/profile-subscription-bulk-create-jobs", json={"data": subscribe}), 202)
    ok(client.post("/api/profile-subscription-bulk-delete-jobs", json={"data": unsubscribe}), 202)
    ok(client.delete(f"/api/lists/{list_id}"), 204)
    for job in account.pending:
        job.ready_at = 0.0

    everyone = ok(client.get("/api/profiles", params=SUBSCRIPTIONS))  # settles both jobs
    consent = {
        p["attributes"]["email"]: p["attributes"]["subscriptions"]["email"]["marketing"]["consent"]
        for p in everyone["data"]
    }
    assert consent == {"gone@example.com": "UNSUBSCRIBED", "new@example.com": "SUBSCRIBED"}
    assert not account.pending and list_id not in account.members


# 2. sort ------------------------------------------------------------------------------------
def test_profiles_and_lists_sort_on_every_documented_field_across_pages(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    emails = ["cy@example.com", "al@example.com", "bo@example.com"]
    pids = {email: new_profile(client, email) for email in emails}
    profiles = sandbox.app.account.profiles
    for day, email in zip(("03", "01", "02"), emails, strict=True):
        profiles[pids[email]]["attributes"]["created"] = f"2026-01-{day}T00:00:00+00:00"
        profiles[pids[email]]["attributes"]["updated"] = f"2026-02-{day}T00:00:00+00:00"
    by_email = [pids[e] for e in sorted(emails)]
    one = {"page[size]": "1"}
    assert pages(client, "/api/profiles", {**one, "sort": "email"}) == by_email
    assert pages(client, "/api/profiles", {**one, "sort": "-email"}) == by_email[::-1]
    assert pages(client, "/api/profiles", {**one, "sort": "created"}) == by_email
    assert pages(client, "/api/profiles", {**one, "sort": "-updated"}) == by_email[::-1]
    assert pages(client, "/api/profiles", {**one, "sort": "id"}) == sorted(pids.values())

    lids = [new_list(client, name) for name in ("beta", "alpha", "gamma")]
    assert pages(client, "/api/lists", {"sort": "-name"}) == [lids[2], lids[0], lids[1]]
    assert pages(client, "/api/lists", {"sort": "id"}) == sorted(lids)


def test_list_members_sort_newest_first_with_stable_cursors(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    list_id = new_list(client, "members")
    pids = [new_profile(client, f"m{i}@example.com") for i in range(5)]
    for pid in pids:
        add(client, list_id, pid)
    newest = {"page[size]": "2", "sort": "-joined_group_at"}
    assert pages(client, f"/api/lists/{list_id}/profiles", newest) == pids[::-1]
    assert pages(client, f"/api/lists/{list_id}/relationships/profiles", newest) == pids[::-1]
    first = ok(client.get(f"/api/lists/{list_id}/profiles", params=newest))
    assert ids(first) == [pids[4], pids[3]]
    # A member removed between pages neither shifts nor repeats the next page.
    body = {"data": [{"type": "profile", "id": pids[3]}]}
    ok(client.request("DELETE", f"/api/lists/{list_id}/relationships/profiles", json=body), 204)
    assert ids(ok(client.get(first["links"]["next"]))) == [pids[2], pids[1]]


# 3. filters the documents allow (and only those) --------------------------------------------
def test_documented_filters_are_served(sandbox: RunningSandbox, client: httpx.Client) -> None:
    account = sandbox.app.account
    old, new = new_profile(client, "old@example.com"), new_profile(client, "new@example.com")
    account.profiles[old]["attributes"]["created"] = "2025-01-01T00:00:00+00:00"
    account.profiles[old]["attributes"]["updated"] = "2025-01-01T00:00:00+00:00"
    suppress = {
        "type": "profile-suppression-bulk-create-job",
        "attributes": {
            "profiles": {"data": [{"type": "profile", "attributes": {"email": "new@example.com"}}]}
        },
    }
    ok(client.post("/api/profile-suppression-bulk-create-jobs", json={"data": suppress}), 202)
    account.pending[0].ready_at = 0.0

    def profiles(text: str) -> list[str]:
        return ids(ok(client.get("/api/profiles", params={"filter": text})))

    assert profiles("greater-than(created,2026-01-01T00:00:00Z)") == [new]
    assert profiles("less-than(updated,2026-01-01T00:00:00+00:00)") == [old]
    reason = "subscriptions.email.marketing.suppression.reason"
    assert profiles(f'equals({reason},"USER_SUPPRESSED")') == [new]
    assert profiles(f'equals({reason},"HARD_BOUNCE")') == []
    assert profiles("less-or-equal(subscriptions.email.marketing.suppression.timestamp,"
                    "2000-01-01T00:00:00Z)") == []  # fmt: skip

    beta, alpha = new_list(client, "beta"), new_list(client, "alpha")
    account.lists[beta]["created"] = "2025-01-01T00:00:00+00:00"
    assert ids(
        ok(client.get("/api/lists", params={"filter": "greater-than(created,2026-01-01T00:00:00)"}))
    ) == [alpha]

    add(client, alpha, old, new)
    account.members[alpha].joined_at[old] = "2025-06-01T00:00:00+00:00"
    members = f"/api/lists/{alpha}/profiles"
    for text, wanted in (
        ("greater-or-equal(joined_group_at,2026-01-01T00:00:00Z)", [new]),
        ("greater-than(joined_group_at,2025-06-01T00:00:00Z)", [new]),
        ("less-or-equal(joined_group_at,2025-06-01T00:00:00Z)", [old]),
        ("less-than(joined_group_at,2025-06-01T00:00:00Z)", []),
    ):
        assert ids(ok(client.get(members, params={"filter": text}))) == wanted, text


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/api/profiles", 'greater-than(email,"a")'),
        ("/api/profiles", "greater-or-equal(created,2026-01-01T00:00:00Z)"),
        ("/api/lists", "less-than(created,2026-01-01T00:00:00Z)"),
        ("/api/lists", 'equals(opt_in_process,"single_opt_in")'),
    ],
)
def test_undocumented_filters_are_refused_naming_the_parameter(
    client: httpx.Client, path: str, text: str
) -> None:
    error = refused(client.get(path, params={"filter": text}))
    assert error["source"] == {"parameter": "filter"}
    assert "is not a valid operator for" in error["detail"]


def test_a_malformed_date_in_a_filter_is_a_400(client: httpx.Client) -> None:
    error = refused(client.get("/api/profiles", params={"filter": "greater-than(created,soon)"}))
    assert error["detail"] == "Invalid date-time 'soon' in filter."


# 5. metric aggregates: filter fields from the document --------------------------------------
def _aggregate(client: httpx.Client, metric_id: str, *filters: str) -> httpx.Response:
    body = {
        "data": {
            "type": "metric-aggregate",
            "attributes": {
                "metric_id": metric_id,
                "measurements": ["count"],
                "interval": "day",
                "filter": [
                    "greater-or-equal(datetime,2026-11-01T00:00:00)",
                    "less-than(datetime,2026-11-02T00:00:00)",
                    *filters,
                ],
            },
        }
    }
    # The aggregates endpoint has Klaviyo's smallest burst (3 a second; 3 in 10 ms under
    # --fast), so a quick run of reads can meet a 429: wait as it says, as any client must.
    while True:
        response = client.post("/api/metric-aggregates", json=body)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", "0.01")) / 100)


def test_aggregate_filters_match_documented_dimensions_and_refuse_others(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    sent = []
    for i, message in enumerate(("m1", "m1", "m2")):
        sent.append(
            {
                "type": "event",
                "attributes": {
                    "properties": {"$attributed_message": message},
                    "metric": {"data": {"type": "metric", "attributes": {"name": "Opened Email"}}},
                    "profile": {
                        "data": {"type": "profile", "attributes": {"email": f"e{i}@example.com"}}
                    },
                    "time": f"2026-11-01T0{i}:00:00+00:00",
                },
            }
        )
    for event in sent:
        ok(client.post("/api/events", json={"data": event}), 202)
    sandbox.app.account.job_delay = 0.0
    for job in sandbox.app.account.pending:
        job.ready_at = 0.0
    [metric] = ok(client.get("/api/metrics"))["data"]

    def count(*filters: str) -> list[float]:
        [row] = ok(_aggregate(client, metric["id"], *filters))["data"]["attributes"]["data"]
        return list(row["measurements"]["count"])

    assert count() == [3.0]
    assert count('equals($attributed_message,"m1")') == [2.0]
    assert count('any($attributed_message,["m2","m3"])') == [1.0]
    for unknown in ('equals(profile_id,"x")', 'equals(color,"red")'):
        error = refused(_aggregate(client, metric["id"], unknown))
        assert error["source"] == {"pointer": "/data/attributes/filter/2"}, unknown
        assert "is not a valid field for filtering metric aggregates" in error["detail"]


# 4. include ---------------------------------------------------------------------------------
def test_includes_answer_relationships_and_included(client: httpx.Client) -> None:
    list_id = new_list(client, "with")
    pid = new_profile(client, "in@example.com")
    add(client, list_id, pid)
    document = ok(client.get(f"/api/profiles/{pid}", params={"include": "lists,segments"}))
    relationships = document["data"]["relationships"]
    assert relationships["lists"]["data"] == [{"type": "list", "id": list_id}]
    assert relationships["segments"]["data"] == []
    assert [(item["type"], item["id"]) for item in document["included"]] == [("list", list_id)]
    plain = ok(client.get(f"/api/profiles/{pid}"))
    assert "included" not in plain and "relationships" not in plain["data"]
    lists = ok(client.get("/api/lists", params={"include": "tags,flow-triggers"}))
    [relationships] = [item["relationships"] for item in lists["data"]]
    assert (relationships["tags"]["data"], relationships["flow-triggers"]["data"]) == ([], [])
    assert lists["included"] == []


# 6. links.next as the cursor ----------------------------------------------------------------
def test_only_the_sandboxs_own_links_are_accepted_as_a_cursor(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    for i in range(2):
        new_profile(client, f"p{i}@example.com")
    first = ok(client.get("/api/profiles", params={"page[size]": "1"}))
    nxt = first["links"]["next"]
    whole = ok(client.get("/api/profiles", params={"page[size]": "1", "page[cursor]": nxt}))
    assert ids(whole) == ids(ok(client.get(nxt)))
    klaviyos = "https://a.klaviyo.com" + urlsplit(nxt).path + "?" + urlsplit(nxt).query
    error = refused(client.get("/api/profiles", params={"page[cursor]": klaviyos}))
    assert error["detail"] == "Invalid cursor provided."


# 7. injected faults -------------------------------------------------------------------------
def _raw_get(base_url: str, key: str) -> bytes:
    """One request on its own connection; every byte the server sends before closing."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as conn:
        conn.sendall(
            (
                f"GET /api/lists HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"Authorization: Klaviyo-API-Key {key}\r\n"
                f"revision: {revisions.STABLE_REVISION}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def test_injected_faults_look_like_klaviyos_own() -> None:
    """Every request draws a fault: a 429 says at least 1 second, as real throttles do, and a
    drop before the reply sends no byte at all."""
    # Seed 8 draws drop-before, 429, 500, drop-after, 429, drop-before (no slow reply).
    config = SandboxConfig(fast=True, faults=1.0, seed=8)
    with serve_in_thread(config) as running:
        answers = [_raw_get(running.base_url, running.api_key) for _ in range(6)]
    throttles = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
    assert throttles and all(b"retry-after: 1\r\n" in a.lower() for a in throttles)
    assert all(b"Expected available in 1 second(s)." in a for a in throttles)
    assert [a for a in answers if a == b""] == [b"", b""]
    assert all(a == b"" or a.startswith(b"HTTP/1.1 ") for a in answers)
