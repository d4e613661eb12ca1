"""Consent is one-way: under list_mode subscribe warmup raised a NEVER_SUBSCRIBED person to
SUBSCRIBED to put them on the exclusion list; once they unsubscribe, warmup lowers it again in
Klaviyo (bulk unsubscribe, read back) without unsubscribe_via_api. Real sandbox over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.dispatch.klaviyo.klaviyo_helpers import (
    add_customers,
    fast_client,
    plan_day,
    reject,
    write_plan,
)
from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.providers.klaviyo import lists as ops
from warmup.providers.klaviyo.endpoints import REVISION
from warmup.sandbox import RunningSandbox
from warmup.store import open_store


def _marketing(sandbox: RunningSandbox, email: str) -> tuple[str, bool]:
    # what any Klaviyo client reads: GET /api/profiles with the subscriptions field
    answer = httpx.get(
        f"{sandbox.base_url}/api/profiles",
        params={
            "filter": f'equals(email,"{email}")',
            "additional-fields[profile]": "subscriptions",
        },
        headers={"Authorization": f"Klaviyo-API-Key {sandbox.api_key}", "revision": REVISION},
    )
    answer.raise_for_status()
    (profile,) = answer.json()["data"]
    state = profile["attributes"]["subscriptions"]["email"]["marketing"]
    return str(state["consent"]), bool(state["can_receive_email_marketing"])


def test_an_unsubscribe_lowers_the_consent_warmup_raised(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url, list_mode="subscribe")
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 4)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    ops.import_profiles(client, [{"email": f"c{i}@example.com"} for i in everyone], None, poll=0.02)
    assert _marketing(sandbox, "c3@example.com") == ("NEVER_SUBSCRIBED", False)
    plan_day(store, 1, everyone[:3], everyone)
    reads = client.stats.requests["get_list_profiles"]
    joined = drain_klaviyo(loaded, store, 1, client=client)
    # the subscription wait reads the list back: the summary counts those requests
    reads = client.stats.requests["get_list_profiles"] - reads
    assert joined.requests_readback == reads > 0
    # warmup's subscription job raised them: the state this test is about
    assert _marketing(sandbox, "c3@example.com") == ("SUBSCRIBED", True)

    reject(store, 1, [3])
    report = drain_klaviyo(loaded, store, 1, client=client)
    assert report.sent == 1 and report.on_hold == 0, report.problems
    assert report.requests_readback >= 2  # the list and the profile's subscriptions
    assert _marketing(sandbox, "c3@example.com") == ("UNSUBSCRIBED", False)
    # nobody else is touched; nobody never-subscribed is raised by an unsubscribe
    assert _marketing(sandbox, "c1@example.com") == ("SUBSCRIBED", True)
    assert _marketing(sandbox, "c4@example.com") == ("NEVER_SUBSCRIBED", False)
    account = sandbox.app.account
    unsub = report.lists["unsubscribe"]
    assert {account.profiles[p]["attributes"]["email"] for p in account.members[unsub].seq_of} == {
        "c3@example.com"
    }
    store.close()
