"""The sandbox against the facts in klaviyo-api.md: auth, revision, JSON:API errors, batch
limits, rate limits with Retry-After, async jobs, 409 duplicates, cursor paging, state file."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import warmup.sandbox.app as sandbox_app
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread

REVISION = "2026-07-15"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=11)) as running:
        yield running


def http(sb: RunningSandbox, key: str | None = None, **headers: str) -> httpx.Client:
    base = {
        "Authorization": f"Klaviyo-API-Key {key or sb.api_key}",
        "revision": REVISION,
        "Content-Type": "application/vnd.api+json",
    }
    base.update(headers)
    return httpx.Client(base_url=sb.base_url, headers={k: v for k, v in base.items() if v})


def error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/vnd.api+json"
    [only] = response.json()["errors"]
    assert {"id", "code", "title", "detail", "status"} <= set(only)
    assert only["status"] == response.status_code
    return dict(only)


def new_list(client: httpx.Client, name: str = "L") -> str:
    response = client.post(
        "/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}}
    )
    assert response.status_code == 201
    return str(response.json()["data"]["id"])


def profiles_body(n: int, kind: str = "profile-bulk-import-job") -> dict[str, Any]:
    return {
        "data": {
            "type": kind,
            "attributes": {
                "profiles": {
                    "data": [
                        {"type": "profile", "attributes": {"email": f"p{i}@example.com"}}
                        for i in range(n)
                    ]
                }
            },
        }
    }


def test_missing_scheme_is_401_not_authenticated(sandbox: RunningSandbox) -> None:
    with http(sandbox, Authorization=f"Bearer {sandbox.api_key}") as client:
        response = client.get("/api/lists")
    assert response.status_code == 401
    body = error(response)
    assert body["code"] == "not_authenticated"
    assert body["detail"] == (
        "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."
    )


def test_wrong_key_is_401_and_missing_scope_is_403(sandbox: RunningSandbox) -> None:
    with http(sandbox, key="pk_" + "0" * 34) as client:
        assert error(client.get("/api/lists"))["code"] == "authentication_failed"
    with http(sandbox, key=sandbox.read_only_key) as client:
        assert client.get("/api/lists").status_code == 200
        response = client.post(
            "/api/lists", json={"data": {"type": "list", "attributes": {"name": "x"}}}
        )
    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"


def test_revision_header_is_required_and_checked(sandbox: RunningSandbox) -> None:
    with http(sandbox, revision="") as client:
        assert error(client.get("/api/lists"))["code"] == "invalid"
    with http(sandbox, revision="2019-01-01") as client:
        response = client.get("/api/lists")
    assert response.status_code == 404
    assert error(response)["detail"] == "No valid revisions found for method."


def test_bodies_are_validated_against_the_openapi_schema(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        response = client.post("/api/profiles", json={"data": {"type": "list", "attributes": {}}})
        assert response.status_code == 400
        body = error(response)
        assert body["code"] == "invalid" and body["source"]["pointer"] == "/data/type"
        response = client.post("/api/profiles", content=b"{not json")
        assert error(response)["source"]["pointer"] == "/data"


def test_batch_limits(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        list_id = new_list(client)
        too_many = {"data": [{"type": "profile", "id": f"id{i}"} for i in range(1001)]}
        response = client.post(f"/api/lists/{list_id}/relationships/profiles", json=too_many)
        assert response.status_code == 400
        assert (
            client.post("/api/profile-bulk-import-jobs", json=profiles_body(10_001)).status_code
            == 400
        )
        unsubscribe = profiles_body(101, "profile-subscription-bulk-delete-job")
        assert (
            client.post("/api/profile-subscription-bulk-delete-jobs", json=unsubscribe).status_code
            == 400
        )


def test_duplicate_profile_is_409_with_the_existing_id(sandbox: RunningSandbox) -> None:
    body = {"data": {"type": "profile", "attributes": {"email": "Ann@Example.com"}}}
    with http(sandbox) as client:
        first = client.post("/api/profiles", json=body)
        assert first.status_code == 201
        body["data"]["attributes"]["email"] = "ann@example.com"
        again = client.post("/api/profiles", json=body)
        upsert = client.post("/api/profile-import", json=body)
    assert again.status_code == 409
    detail = error(again)
    assert detail["code"] == "duplicate_profile"
    assert detail["meta"]["duplicate_profile_id"] == first.json()["data"]["id"]
    assert upsert.status_code == 200


def test_bulk_import_is_202_then_completes_and_joins_the_list(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        list_id = new_list(client)
        body = profiles_body(3)
        body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
        accepted = client.post("/api/profile-bulk-import-jobs", json=body)
        assert accepted.status_code == 202
        job = accepted.json()["data"]
        assert job["attributes"]["status"] == "queued"
        status = job["attributes"]["status"]
        for _ in range(200):
            status = client.get(f"/api/profile-bulk-import-jobs/{job['id']}").json()["data"][
                "attributes"
            ]["status"]
            if status == "complete":
                break
            time.sleep(0.01)
        assert status == "complete"
        members = client.get(f"/api/lists/{list_id}/relationships/profiles").json()["data"]
    assert len(members) == 3


def test_list_add_and_remove_answer_204_without_body(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        list_id = new_list(client)
        pid = client.post(
            "/api/profiles",
            json={"data": {"type": "profile", "attributes": {"email": "a@example.com"}}},
        ).json()["data"]["id"]
        body = {"data": [{"type": "profile", "id": pid}]}
        for _ in range(2):  # re-adding a member is idempotent
            added = client.post(f"/api/lists/{list_id}/relationships/profiles/", json=body)
            assert added.status_code == 204 and added.content == b""
        assert len(sandbox.app.account.members[list_id].seq_of) == 1
        removed = client.request(
            "DELETE", f"/api/lists/{list_id}/relationships/profiles", json=body
        )
    assert removed.status_code == 204
    assert sandbox.app.account.members[list_id].seq_of == {}


def test_cursor_paging_follows_next_links_and_rejects_bad_cursors(sandbox: RunningSandbox) -> None:
    account = sandbox.app.account
    list_id = account.create_list("paged", None)["id"]
    ids = [account.create_profile({"email": f"m{i}@example.com"})["id"] for i in range(250)]
    account.add_members(list_id, ids)
    seen: list[str] = []
    with http(sandbox) as client:
        url: str | None = f"/api/lists/{list_id}/profiles?page[size]=100"
        pages = 0
        while url:
            document = client.get(url).json()
            seen += [item["id"] for item in document["data"]]
            url = document["links"]["next"]
            pages += 1
            if url:
                assert "page%5Bcursor%5D=" in url
        assert pages == 3 and seen == ids
        assert client.get(f"/api/lists/{list_id}/profiles?page[size]=101").status_code == 400
        bad = base64.b64encode(b"garbage").decode()
        response = client.get(f"/api/lists/{list_id}/profiles?page[cursor]={bad}")
    assert error(response)["detail"] == "Invalid cursor provided."


def test_lists_are_found_by_name_in_both_filter_forms(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        list_id = new_list(client, "Warmup exclusions")
        for expression in (
            'equals(name,"Warmup exclusions")',
            "equals(name,['Warmup exclusions'])",
        ):
            found = client.get("/api/lists", params={"filter": expression}).json()["data"]
            assert [item["id"] for item in found] == [list_id]


class FrozenTime:
    """The sandbox's rate-limit clock stopped mid-window, so the test depends on no timing."""

    @staticmethod
    def monotonic() -> float:
        return 1000.5


def test_rate_limit_429_with_retry_after_at_the_real_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_app, "time", FrozenTime)
    with serve_in_thread(SandboxConfig(seed=1)) as sandbox, http(sandbox) as client:
        answers = [client.get("/api/profile-bulk-import-jobs/nope") for _ in range(11)]
    assert [r.status_code for r in answers] == [404] * 10 + [429]
    throttled = answers[-1]
    assert throttled.headers["Retry-After"] == "1"
    assert "RateLimit-Limit" not in throttled.headers
    body = error(throttled)
    assert body["code"] == "throttled"
    assert body["detail"] == "Request was throttled. Expected available in 1 second(s)."
    assert answers[0].headers["RateLimit-Limit"] == "150"


def test_unsubscribe_records_a_suppression_readable_by_filter(sandbox: RunningSandbox) -> None:
    body = profiles_body(2, "profile-subscription-bulk-delete-job")
    for item in body["data"]["attributes"]["profiles"]["data"]:
        item["attributes"]["subscriptions"] = {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    with http(sandbox) as client:
        accepted = client.post("/api/profile-subscription-bulk-delete-jobs", json=body)
        assert accepted.status_code == 202 and accepted.content == b""
        time.sleep(0.05)  # jobs complete "later"; in fast mode within milliseconds
        flt = (
            "greater-than(subscriptions.email.marketing.suppression.timestamp,2000-01-01T00:00:00Z)"
        )
        found = client.get("/api/profiles", params={"filter": flt}).json()["data"]
    assert sorted(p["attributes"]["email"] for p in found) == ["p0@example.com", "p1@example.com"]


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    config = SandboxConfig(fast=True, state=state)
    with serve_in_thread(config) as sandbox, http(sandbox) as client:
        list_id = new_list(client, "kept")
    assert state.exists()
    with (
        serve_in_thread(SandboxConfig(fast=True, state=state, api_key=config.api_key)) as sandbox,
        http(sandbox) as client,
    ):
        found = client.get("/api/lists").json()["data"]
    assert [item["id"] for item in found] == [list_id]


def test_faults_inject_errors_and_dropped_connections() -> None:
    with (
        serve_in_thread(SandboxConfig(fast=True, faults=1.0, seed=2)) as sandbox,
        http(sandbox) as client,
    ):
        outcomes = set()
        for _ in range(30):
            try:
                outcomes.add(client.get("/api/lists").status_code)
            except httpx.TransportError:
                outcomes.add("dropped")
    assert {429, 500, 200, "dropped"} <= outcomes
