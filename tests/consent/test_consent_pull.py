"""Klaviyo → store: unsubscribes and suppressions made in Klaviyo (the sandbox, over real HTTP)
withdraw consent in the store, once, remembering where the last pull stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.consent import KEY_ENV, add_customers, write_plan
from warmup.consent import pull_klaviyo_unsubscribes
from warmup.consent.pull import PULL_META_KEY, pull_for_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.lists import subscribe, suppress, unsubscribe
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.store import open_store


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=5)) as running:
        yield running


def settle(sandbox: RunningSandbox, client: KlaviyoClient) -> None:
    """Let the sandbox's (fast) async jobs finish: it completes due jobs on its next request."""
    account = sandbox.app.account
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        job.status != "complete" for job in account.jobs.values()
    ):
        time.sleep(0.02)
        client.get("/api/lists")


def consents(store: object) -> dict[str, str]:
    return dict(
        store.conn.execute(  # type: ignore[attr-defined]
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id"
        )
    )


def test_pull_marks_klaviyo_unsubscribes_once(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = write_plan(tmp_path, base_url=sandbox.base_url)
    store = open_store(loaded.store_path)
    emails = [f"k{i}@example.com" for i in range(6)]
    add_customers(store, emails)
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        subscribe(client, [*emails, "stranger@example.com"])
        settle(sandbox, client)
        unsubscribe(client, ["k1@example.com", "stranger@example.com"])
        suppress(client, ["k2@example.com"])
        settle(sandbox, client)
        assert pull_klaviyo_unsubscribes(loaded, store, client) == 2
        assert consents(store) == {
            "k0@example.com": "subscribed",
            "k1@example.com": "unsubscribed",
            "k2@example.com": "suppressed",
            "k3@example.com": "subscribed",
            "k4@example.com": "subscribed",
            "k5@example.com": "subscribed",
        }
        mark = store.get_meta(PULL_META_KEY)
        assert mark is not None
        assert pull_klaviyo_unsubscribes(loaded, store, client) == 0
        time.sleep(1.1)  # Klaviyo's timestamps have whole seconds
        unsubscribe(client, ["k4@example.com"])
        settle(sandbox, client)
        assert pull_for_plan(loaded) == 1  # the plan's own client, as `warmup sync --pull`
        assert consents(store)["k4@example.com"] == "unsubscribed"
        assert store.get_meta(PULL_META_KEY) > mark  # type: ignore[operator]
    history = store.conn.execute(
        "SELECT count(*) FROM consent_changes WHERE source = 'klaviyo-pull'"
    ).fetchone()[0]
    assert history == 3
    store.close()


def test_an_unsubscribe_in_the_second_of_the_last_pull_is_not_missed(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Klaviyo's timestamps have whole seconds: someone unsubscribed in the same second as the
    last pull's newest change (after that pull) is still found by the next pull."""
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = write_plan(tmp_path, base_url=sandbox.base_url)
    store = open_store(loaded.store_path)
    emails = ["s1@example.com", "s2@example.com"]
    add_customers(store, emails)
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        subscribe(client, emails)
        settle(sandbox, client)
        account = sandbox.app.account
        first, second = (account.profile_by("email", e) for e in emails)
        assert first is not None and second is not None
        account.unsubscribe(first)
        assert pull_klaviyo_unsubscribes(loaded, store, client) == 1
        account.unsubscribe(second)
        second["suppression"]["timestamp"] = first["suppression"]["timestamp"]
        assert pull_klaviyo_unsubscribes(loaded, store, client) == 1
        assert consents(store)["s2@example.com"] == "unsubscribed"
    store.close()
