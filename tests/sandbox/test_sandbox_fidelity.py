"""Issue 18: revisions as Klaviyo treats them, closed objects with Klaviyo's unknown-field 400,
the operations beyond warmup's own calls (events, metrics, aggregates, delete list, update
profile, unsuppress), unknown paths, and ``--fast`` keeping the tiers' shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

import warmup.sandbox.app as sandbox_app
from warmup.providers.klaviyo.endpoints import REVISION as WARMUP_REVISION
from warmup.providers.klaviyo.endpoints import Tier
from warmup.providers.klaviyo.ratelimit import RateLimiter
from warmup.sandbox import RunningSandbox, SandboxConfig, revisions, serve_in_thread, spec
from warmup.sandbox.handlers_events import _bucket_starts
from warmup.sandbox.revisions import Refusal

TODAY = date(2026, 12, 1)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=18)) as running:
        yield running


def http(sb: RunningSandbox, revision: str = revisions.STABLE_REVISION) -> httpx.Client:
    headers = {"Authorization": f"Klaviyo-API-Key {sb.api_key}", "revision": revision}
    return httpx.Client(base_url=sb.base_url, headers=headers)


def only_error(response: httpx.Response) -> dict[str, Any]:
    [error] = response.json()["errors"]
    assert error["status"] == response.status_code
    return dict(error)


def until(read: Any, done: Any) -> Any:
    for _ in range(200):
        answer = read()
        if done(answer):
            return answer
        time.sleep(0.01)
    raise AssertionError(answer)


# revisions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "served"),
    [
        ("2026-10-15", "2026-10-15"),  # the current stable release (klaviyo-api 25.0.0)
        ("2026-11-20", "2026-10-15"),  # a date between releases: the latest one before it
        ("2026-07-15", "2026-07-15"),
        ("2025-03-01", "2025-01-15"),
        ("2026-04-15.pre", "2026-04-15"),
    ],
)
def test_live_revisions_are_served(header: str, served: str) -> None:
    assert revisions.check(header, TODAY) == served


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        (None, 400, "invalid"),
        ("2026-13-01", 400, "invalid"),
        ("v3", 400, "invalid"),
        ("2019-01-01", 404, "not_found"),  # before the first release
        ("2027-01-15", 404, "not_found"),  # in the future
        ("2024-10-15", 410, "gone"),  # released 2024-10-15, retired two years later
        ("2023-02-22", 410, "gone"),
    ],
)
def test_refused_revisions(header: str | None, status: int, code: str) -> None:
    refusal = revisions.check(header, TODAY)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.code) == (status, code)


def test_a_retired_revision_names_the_supported_range() -> None:
    refusal = revisions.check("2024-10-15", TODAY)
    assert isinstance(refusal, Refusal)
    assert refusal.detail == (
        "Revision 2024-10-15 was retired on 2026-10-15; send a supported revision from "
        "2025-01-15 to 2026-10-15."
    )
    # A year later the next releases have retired too.
    assert revisions.check("2025-04-15", date(2027, 6, 1)) != "2025-04-15"


def test_warmup_sends_the_current_stable_revision() -> None:
    assert WARMUP_REVISION == revisions.STABLE_REVISION == revisions.RELEASES[-1]


def test_the_wire_answers_a_retired_revision_410(sandbox: RunningSandbox) -> None:
    with http(sandbox, "2024-10-15") as client:
        response = client.get("/api/lists")
    assert response.status_code == 410
    assert only_error(response)["code"] == "gone"


# closed objects ---------------------------------------------------------------------------
def test_an_unknown_attribute_is_refused_with_klaviyos_pointer(sandbox: RunningSandbox) -> None:
    body = {
        "data": {
            "type": "profile",
            "attributes": {"email": "ann@example.com", "favorite_color": "red"},
        }
    }
    with http(sandbox) as client:
        response = client.post("/api/profiles", json=body)
        assert response.status_code == 400
        error = only_error(response)
        assert error["code"] == "invalid"
        assert (
            error["detail"] == "'favorite_color' is not a valid field for the resource 'profile'."
        )
        assert error["source"] == {"pointer": "/data/attributes/favorite_color"}
        # nothing was stored
        found = client.get("/api/profiles", params={"filter": 'equals(email,"ann@example.com")'})
        assert found.json()["data"] == []


def test_unknown_fields_are_refused_at_any_depth(sandbox: RunningSandbox) -> None:
    nested = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {"email": "a@example.com", "location": {"planet": "x"}},
                        }
                    ]
                }
            },
        }
    }
    with http(sandbox) as client:
        error = only_error(client.post("/api/profile-bulk-import-jobs", json=nested))
        assert error["source"]["pointer"] == (
            "/data/attributes/profiles/data/0/attributes/location/planet"
        )
        assert error["detail"] == "'planet' is not a valid field for the resource 'location'."
        top = {"data": {"type": "list", "attributes": {"name": "x"}, "colour": "red"}}
        error = only_error(client.post("/api/lists", json=top))
        assert error["source"]["pointer"] == "/data/colour"
        assert error["detail"] == "'colour' is not a valid field for the resource 'list'."
        # Custom properties are free-form, as at Klaviyo.
        free = {
            "data": {
                "type": "profile",
                "attributes": {"email": "b@example.com", "properties": {"favorite_color": "red"}},
            }
        }
        assert client.post("/api/profiles", json=free).status_code == 201


def test_unlisted_query_values_are_refused_naming_the_parameter(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        fields = client.get("/api/profiles", params={"fields[profile]": "email,favorite_color"})
        assert fields.status_code == 400
        error = only_error(fields)
        assert error["source"] == {"parameter": "fields[profile]"}
        assert (
            error["detail"] == "'favorite_color' is not a valid field for the resource 'profile'."
        )
        include = client.get("/api/events", params={"include": "campaign"})
        assert only_error(include)["source"] == {"parameter": "include"}
        sort = client.get("/api/profiles", params={"sort": "shoe_size"})
        assert only_error(sort)["source"] == {"parameter": "sort"}
        listed = client.get("/api/profiles", params={"fields[profile]": "email", "sort": "-email"})
        assert listed.status_code == 200


def test_an_unknown_path_gets_klaviyos_error_shape(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        response = client.get("/api/campaign-wizards")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/vnd.api+json"
    assert only_error(response)["code"] == "not_found"


# --fast ------------------------------------------------------------------------------------
class FrozenTime:
    @staticmethod
    def monotonic() -> float:
        return 1000.005


def test_fast_keeps_the_tiers_counts_and_shortens_the_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_app, "time", FrozenTime)
    with serve_in_thread(SandboxConfig(fast=True, seed=2)) as sb, http(sb) as client:
        answers = [client.get("/api/metrics") for _ in range(11)]
    # get_metrics is 10/s at Klaviyo: the eleventh call of a burst is throttled, fast or not.
    assert [r.status_code for r in answers] == [200] * 10 + [429]
    assert answers[0].headers["RateLimit-Limit"] == "150"
    assert int(answers[0].headers["RateLimit-Reset"]) <= 1  # a 0.6 s minute
    assert answers[-1].headers["Retry-After"] == "1"


def test_the_clients_fast_scale_shortens_windows_too() -> None:
    limiter = RateLimiter(Tier("M", 10, 150), time_scale=100)
    assert limiter.limits == [(10, 0.01), (150, 0.6)]
    shared = RateLimiter(Tier("M", 10, 150), scale=0.5)
    assert shared.limits == [(5, 1.0), (75, 60.0)]


# events and metrics -----------------------------------------------------------------------
def event(email: str, when: datetime, unique: str | None = None, **props: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "properties": props,
        "metric": {"data": {"type": "metric", "attributes": {"name": "Opened Email"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
        "time": when.isoformat(),
    }
    if unique:
        attributes["unique_id"] = unique
    return {"data": {"type": "event", "attributes": attributes}}


def test_events_are_stored_filtered_paged_and_aggregated(sandbox: RunningSandbox) -> None:
    day = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with http(sandbox) as client:
        posts = [
            event("ann@example.com", day, "a1", **{"Campaign Name": "day-1"}),
            event("ann@example.com", day, "a1", **{"Campaign Name": "day-1"}),  # same unique_id
            event("bob@example.com", day + timedelta(hours=1), **{"Campaign Name": "day-1"}),
            event("ann@example.com", day + timedelta(days=1), **{"Campaign Name": "day-2"}),
        ]
        for body in posts:
            accepted = client.post("/api/events", json=body)
            assert accepted.status_code == 202 and accepted.content == b""
        everything = until(lambda: client.get("/api/events").json(), lambda d: len(d["data"]) == 3)[
            "data"
        ]
        assert [e["attributes"]["datetime"] for e in everything] == sorted(
            e["attributes"]["datetime"] for e in everything
        )
        metric_id = everything[0]["relationships"]["metric"]["data"]["id"]
        ann = everything[0]["relationships"]["profile"]["data"]["id"]

        page = client.get("/api/events", params={"page[size]": "2", "sort": "-datetime"}).json()
        assert len(page["data"]) == 2 and page["links"]["next"]
        rest = client.get(page["links"]["next"]).json()
        assert len(rest["data"]) == 1 and rest["links"]["next"] is None
        assert page["data"][0]["attributes"]["event_properties"]["Campaign Name"] == "day-2"

        mine = client.get(
            "/api/events",
            params={
                "filter": f'equals(profile_id,"{ann}"),'
                "greater-or-equal(datetime,2026-11-03T00:00:00Z)",
                "include": "metric,profile",
            },
        ).json()
        assert [e["attributes"]["event_properties"]["Campaign Name"] for e in mine["data"]] == [
            "day-2"
        ]
        assert {i["type"] for i in mine["included"]} == {"metric", "profile"}
        assert client.get("/api/events", params={"filter": "equals(color,1)"}).status_code == 400
        assert client.get("/api/events", params={"page[size]": "1000"}).status_code == 200
        assert client.get("/api/events", params={"page[size]": "1001"}).status_code == 400
        assert client.get("/api/events/NOPE").status_code == 404

        metrics = client.get("/api/metrics").json()["data"]
        assert [(m["id"], m["attributes"]["name"]) for m in metrics] == [
            (metric_id, "Opened Email")
        ]
        query = {
            "data": {
                "type": "metric-aggregate",
                "attributes": {
                    "metric_id": metric_id,
                    "measurements": ["count", "unique"],
                    "interval": "day",
                    "by": ["Campaign Name"],
                    "timezone": "Europe/Prague",
                    "filter": [
                        "greater-or-equal(datetime,2026-11-01T00:00:00)",
                        "less-than(datetime,2026-11-04T00:00:00)",
                    ],
                },
            }
        }
        aggregate = client.post("/api/metric-aggregates", json=query).json()["data"]
        assert aggregate["attributes"]["dates"] == [
            "2026-11-01T00:00:00+01:00",
            "2026-11-02T00:00:00+01:00",
            "2026-11-03T00:00:00+01:00",
        ]
        rows = {tuple(r["dimensions"]): r["measurements"] for r in aggregate["attributes"]["data"]}
        assert rows == {
            ("day-1",): {"count": [0.0, 2.0, 0.0], "unique": [0.0, 2.0, 0.0]},
            ("day-2",): {"count": [0.0, 0.0, 1.0], "unique": [0.0, 0.0, 1.0]},
        }
        query["data"]["attributes"]["filter"] = ["greater-or-equal(datetime,2026-11-01T00:00:00)"]
        assert client.post("/api/metric-aggregates", json=query).status_code == 400


def test_an_event_outside_klaviyos_time_range_is_refused(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        old = client.post(
            "/api/events", json=event("a@example.com", datetime(1980, 1, 1, tzinfo=UTC))
        )
    assert old.status_code == 400
    assert only_error(old)["source"]["pointer"] == "/data/attributes/time"


def test_events_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    config = SandboxConfig(fast=True, state=state)
    with serve_in_thread(config) as sb, http(sb) as client:
        client.post("/api/events", json=event("a@example.com", datetime.now(UTC)))
        until(lambda: client.get("/api/events").json()["data"], bool)
    with (
        serve_in_thread(SandboxConfig(fast=True, state=state, api_key=config.api_key)) as sb,
        http(sb) as client,
    ):
        assert len(client.get("/api/events").json()["data"]) == 1
        assert len(client.get("/api/metrics").json()["data"]) == 1


# lists and profiles -----------------------------------------------------------------------
def test_delete_list_update_profile_and_unsuppress(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        created = client.post(
            "/api/lists", json={"data": {"type": "list", "attributes": {"name": "L"}}}
        )
        list_id = created.json()["data"]["id"]
        assert client.delete(f"/api/lists/{list_id}").status_code == 204
        assert client.get(f"/api/lists/{list_id}").status_code == 404
        assert client.delete(f"/api/lists/{list_id}").status_code == 404

        def make(email: str) -> str:
            body = {
                "data": {
                    "type": "profile",
                    "attributes": {"email": email, "properties": {"k": 1, "tags": ["a"]}},
                }
            }
            return str(client.post("/api/profiles", json=body).json()["data"]["id"])

        ann, bob = make("ann@example.com"), make("bob@example.com")
        patch = {
            "data": {
                "type": "profile",
                "id": ann,
                "attributes": {"first_name": "Ann", "email": "ann@new.example.com"},
                "meta": {"patch_properties": {"unset": "k", "append": {"tags": "b"}}},
            }
        }
        updated = client.patch(f"/api/profiles/{ann}", json=patch)
        assert updated.status_code == 200
        attributes = updated.json()["data"]["attributes"]
        assert attributes["email"] == "ann@new.example.com"
        assert attributes["properties"] == {"tags": ["a", "b"]}
        clash = {"data": {"type": "profile", "id": ann, "attributes": {"email": "bob@example.com"}}}
        conflict = client.patch(f"/api/profiles/{ann}", json=clash)
        assert conflict.status_code == 409
        assert only_error(conflict)["meta"]["duplicate_profile_id"] == bob
        assert client.patch(f"/api/profiles/{bob}", json=patch).status_code == 400

        def job(kind: str, email: str) -> dict[str, Any]:
            profiles = {"data": [{"type": "profile", "attributes": {"email": email}}]}
            return {"data": {"type": kind, "attributes": {"profiles": profiles}}}

        assert (
            client.post(
                "/api/profile-suppression-bulk-create-jobs",
                json=job("profile-suppression-bulk-create-job", "bob@example.com"),
            ).status_code
            == 202
        )

        def suppression() -> Any:
            read = client.get(
                f"/api/profiles/{bob}", params={"additional-fields[profile]": "subscriptions"}
            )
            return read.json()["data"]["attributes"]["subscriptions"]["email"]["marketing"][
                "suppression"
            ]

        until(suppression, bool)
        lifted = client.post(
            "/api/profile-suppression-bulk-delete-jobs",
            json=job("profile-suppression-bulk-delete-job", "bob@example.com"),
        )
        assert lifted.status_code == 202
        assert lifted.json()["data"]["links"]["self"].endswith(
            f"/api/profile-suppression-bulk-delete-jobs/{lifted.json()['data']['id']}/"
        )
        until(suppression, lambda s: s == [])


def test_help_says_which_revisions_are_accepted_and_which_shapes_are_served() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "warmup", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb"},
    ).stdout
    assert f"current stable {revisions.STABLE_REVISION} is accepted" in shown
    assert f"shapes of revision {revisions.SHAPES_REVISION}" in shown
    versions = {
        json.loads(path.read_text(encoding="utf-8"))["info"]["version"]
        for path in spec.OPENAPI_DIR.glob("*.json")
    }
    assert versions == {revisions.SHAPES_REVISION}


@pytest.mark.parametrize(
    ("interval", "first", "count"),
    [
        ("hour", "2026-03-29T00:00:00+01:00", 47),  # Prague's spring-forward day is 23 hours
        ("day", "2026-03-29T00:00:00+01:00", 2),
        ("week", "2026-03-23T00:00:00+01:00", 2),  # weeks start on Monday
        ("month", "2026-03-01T00:00:00+01:00", 1),
    ],
)
def test_aggregate_buckets_follow_the_timezone(interval: str, first: str, count: int) -> None:
    zone = ZoneInfo("Europe/Prague")
    starts = _bucket_starts(
        datetime(2026, 3, 29, tzinfo=zone), datetime(2026, 3, 31, tzinfo=zone), interval
    )
    assert (starts[0].isoformat(), len(starts)) == (first, count)


def test_events_of_an_anonymous_visitor_share_one_profile(sandbox: RunningSandbox) -> None:
    with http(sandbox) as client:
        for unique in ("v1", "v2"):
            body = event("x@example.com", datetime.now(UTC), unique)
            body["data"]["attributes"]["profile"]["data"]["attributes"] = {"anonymous_id": "anon-7"}
            assert client.post("/api/events", json=body).status_code == 202
        nobody = event("x@example.com", datetime.now(UTC))
        nobody["data"]["attributes"]["profile"]["data"]["attributes"] = {}
        assert client.post("/api/events", json=nobody).status_code == 400
        found = until(lambda: client.get("/api/events").json()["data"], lambda d: len(d) == 2)
    assert len({e["relationships"]["profile"]["data"]["id"] for e in found}) == 1
