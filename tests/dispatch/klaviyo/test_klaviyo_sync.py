"""The dispatcher against the sandbox over real HTTP: lists end exact, nothing dropped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.dispatch.klaviyo.klaviyo_helpers import (
    KEY_ENV,
    add_customers,
    fast_client,
    plan_day,
    reject,
    statuses,
    write_plan,
)
from warmup.dispatch import dispatch_day
from warmup.dispatch.klaviyo import drain_klaviyo, sync, verify_lists
from warmup.errors import KlaviyoError
from warmup.providers.klaviyo import lists as ops
from warmup.providers.klaviyo.lists import consent_changes_since
from warmup.sandbox import RunningSandbox
from warmup.store import Store, open_store
from warmup.store.outbox import Outbox


def members(sandbox: RunningSandbox, list_id: str) -> set[str]:
    account = sandbox.app.account
    return {account.profiles[pid]["attributes"]["email"] for pid in account.members[list_id].seq_of}


def emails(ids: range | list[int]) -> set[str]:
    return {f"c{i}@example.com" for i in ids}


def test_exclusion_list_follows_each_days_allocation(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 300)
    client = fast_client(sandbox.base_url, sandbox.api_key)

    plan_day(store, 1, range(1, 101), everyone)
    report = drain_klaviyo(loaded, store, 1, client=client)
    list_id = report.lists["exclusion"]
    assert members(sandbox, list_id) == emails(range(1, 101))
    assert statuses(store) == {"sent": 100}
    assert report.requests < 10  # a bulk import job (+ list lookup, polls), not one per customer

    plan_day(store, 2, range(51, 201), everyone)
    report = drain_klaviyo(loaded, store, 2, client=client)
    assert members(sandbox, list_id) == emails(range(51, 201))
    assert report.already_members == 50
    assert report.removed == 50
    assert verify_lists(loaded, store, 2, client=client).ok


def test_a_day_drains_page_by_page_each_row_once(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 40 rows over 100: every row is sent and read back once, the list ends exact,
    and yesterday's members on a later page still cost no write call."""
    monkeypatch.setattr("warmup.dispatch.klaviyo.drain.DRAIN_PAGE", 40)
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 150)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, range(1, 101), everyone)
    report = drain_klaviyo(loaded, store, 1, client=client)
    list_id = report.lists["exclusion"]
    assert members(sandbox, list_id) == emails(range(1, 101))
    assert statuses(store) == {"sent": 100}
    # one import job and one read-back of up to 100 emails per page
    assert report.requests_readback == 3

    plan_day(store, 2, range(31, 151), everyone)
    report = drain_klaviyo(loaded, store, 2, client=client)
    assert members(sandbox, list_id) == emails(range(31, 151))
    assert report.already_members == 70 and report.sent == 120
    assert verify_lists(loaded, store, 2, client=client).ok


def test_an_address_klaviyo_refuses_is_held_with_its_message_and_the_rest_goes_on(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    """The import job refuses one profile (an error whose pointer indexes the payload); an
    invalid phone no longer matters: list imports carry the email alone."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 50, phones={8: "12345"})
    store.backend.execute("UPDATE customers SET email = 'bad..dots@example.com' WHERE id = 7")
    plan_day(store, 1, everyone, everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert report.on_hold == 1 and report.sent == 49
    backlog = Outbox(store).list_change_backlog()
    assert backlog["on_hold"] == 1
    [held] = backlog["attention"]
    assert held["email"] == "bad..dots@example.com"
    assert "Invalid email address" in held["error"]
    assert "bad..dots@example.com" not in members(sandbox, report.lists["exclusion"])


def test_consent_rejects_reach_the_unsubscribe_list_and_klaviyos_consent(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url, unsubscribe_via_api=True)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 20)
    plan_day(store, 1, everyone[:10], everyone)
    reject(store, 1, [3, 4, 15])
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert members(sandbox, report.lists["unsubscribe"]) == emails([3, 4, 15])
    client = fast_client(sandbox.base_url, sandbox.api_key)
    changed = {c.email for c in consent_changes_since(client, "2000-01-01T00:00:00+00:00")}
    assert changed == emails([3, 4, 15])


def test_verify_reports_a_difference_and_repair_fixes_it(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 40)
    plan_day(store, 1, everyone[:20], everyone)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    account = sandbox.app.account
    gone = account.profile_by("email", "c5@example.com")
    assert gone is not None
    account.remove_members(list_id, [gone["id"]])
    stranger = account.create_profile({"email": "stranger@example.com"})
    account.add_members(list_id, [stranger["id"]])

    report = verify_lists(loaded, store, 1, client=client)
    [exclusion, _] = report.diffs
    assert exclusion.missing == ["c5@example.com"]
    assert exclusion.extra == ["stranger@example.com"]
    assert not report.ok

    sync(loaded, store, 1, repair=True, client=client)
    # someone else's member is left alone: repair removes only what warmup added
    assert members(sandbox, list_id) == emails(range(1, 21)) | {"stranger@example.com"}
    after = verify_lists(loaded, store, 1, client=client)
    assert after.ok and after.diffs[0].foreign == 1


def test_per_day_lists_are_created_once_by_name(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url, exclusion='{name: "Warmup exclusions {date}"}')
    store = open_store(store_location)
    everyone = add_customers(store, 30)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone[:10], everyone)
    first = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    plan_day(store, 2, everyone[5:25], everyone)
    second = drain_klaviyo(loaded, store, 2, client=client).lists["exclusion"]
    assert first != second
    names = sorted(r["name"] for r in sandbox.app.account.lists.values())
    assert names == ["Warmup exclusions 2020-01-01", "Warmup exclusions 2020-01-02"]
    assert members(sandbox, first) == emails(range(1, 11))
    assert members(sandbox, second) == emails(range(6, 26))
    cached = store.backend.execute("SELECT count(*) FROM klaviyo_lists").fetchone()[0]
    assert cached == 2


def test_a_killed_run_is_rerun_without_duplicate_effects(
    tmp_path: Path, sandbox: RunningSandbox, store_location: str
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 100)
    plan_day(store, 1, everyone[:60], everyone)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    drain_klaviyo(loaded, store, 1, client=client)
    # Simulate a kill between Klaviyo's confirmation and the store's update.
    store.backend.execute("UPDATE outbox SET status = 'sending' WHERE id % 3 = 0")
    store.backend.execute("DELETE FROM klaviyo_members WHERE customer_id % 3 = 0")
    report = drain_klaviyo(loaded, store, 1, client=client)
    assert statuses(store) == {"sent": 60}
    list_id = report.lists["exclusion"]
    assert members(sandbox, list_id) == emails(range(1, 61))
    assert len(sandbox.app.account.profiles) == 60
    assert sum(1 for r in sandbox.app.account.lists.values()) == 1


def test_dispatch_day_runs_klaviyo_before_email(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch, store_location: str
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(store_location)
    everyone = add_customers(store, 10)
    plan_day(store, 1, everyone[:4], everyone)
    seen: list[dict[str, int]] = []
    import warmup.dispatch as dispatch_module

    def drain_email(loaded: object, store: Store, day: int, **kwargs: Any) -> str:
        # streamed: the email drain runs while Klaviyo is read back, and keeps going until
        # the read-back is over; the email rows themselves wait for their row to be sent
        while kwargs["more"]():
            time.sleep(0.01)
        seen.append(statuses(store))
        return "email-report"

    monkeypatch.setattr(dispatch_module, "drain_email", drain_email)
    report = dispatch_day(
        loaded, store, 1, klaviyo_client=fast_client(sandbox.base_url, sandbox.api_key)
    )
    assert seen == [{"sent": 4}]
    assert report.email == "email-report"


def test_the_api_key_never_reaches_the_store_or_errors(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 5)
    plan_day(store, 1, everyone, everyone)
    drain_klaviyo(loaded, store, 1)  # the plan's own client, key from KLAVIYO_TEST_KEY
    store.close()
    for file in tmp_path.rglob("*"):  # the store, and the list-claims registry
        assert file.is_dir() or sandbox.api_key.encode() not in file.read_bytes()
    monkeypatch.setenv(KEY_ENV, "pk_" + "x" * 34)
    store = open_store(tmp_path / "s.db")
    more = add_customers(store, 5, start=5)
    plan_day(store, 2, more, everyone + more)
    with pytest.raises(KlaviyoError) as caught:
        drain_klaviyo(loaded, store, 2)
    assert caught.value.status == 401
    assert "x" * 34 not in caught.value.render() and "x" * 34 not in repr(caught.value)
    assert statuses(store) == {"sent": 5, "pending": 5}


def test_subscribe_mode_adds_through_subscription_jobs(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url, list_mode="subscribe")
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 30)
    plan_day(store, 1, everyone[:12], everyone)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    report = drain_klaviyo(loaded, store, 1, client=client)
    assert client.stats.requests["subscribe"] == 1 and client.stats.requests["bulk_import"] == 0
    assert verify_lists(loaded, store, 1, client=client).ok  # its reads also let the job finish
    account = sandbox.app.account
    assert members(sandbox, report.lists["exclusion"]) == emails(range(1, 13))
    assert {
        account.profile_by("email", e)["consent"]  # type: ignore[index]
        for e in emails(range(1, 13))
    } == {"SUBSCRIBED"}


def test_a_stale_klaviyo_id_from_the_export_still_lands_in_the_exclusion_list(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Klaviyo answers 204 to adding an unknown profile id and adds nobody: an export's stale
    id must not make a customer look excluded while the new provider mails them."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 20)
    store.conn.execute("UPDATE customers SET klaviyo_id = '01STALEPROFILE0000000000' || id")
    plan_day(store, 1, everyone[:10], everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert members(sandbox, report.lists["exclusion"]) == emails(everyone[:10])
    assert statuses(store) == {"sent": 10}

    plan_day(store, 2, everyone[5:15], everyone)  # the cut learns the real ids to remove
    report = drain_klaviyo(loaded, store, 2, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert members(sandbox, report.lists["exclusion"]) == emails(everyone[5:15])
    assert verify_lists(loaded, store, 2, client=fast_client(sandbox.base_url, sandbox.api_key)).ok


def test_known_ids_go_by_the_list_call_cut_to_its_1000_maximum(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """The scenario batches up to 10,000 (a bulk import's maximum); when the ids are known the
    list-relationship call takes at most 1,000, and the batch is cut to that."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 1500)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone, everyone)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    assert verify_lists(loaded, store, 1, client=client).ok  # reading back learns the ids
    confirmed = store.conn.execute(
        "SELECT count(*) FROM customers WHERE klaviyo_id_confirmed"
    ).fetchone()[0]
    assert confirmed == 1500
    plan_day(store, 2, [], everyone)  # nobody new today: the cut empties the list
    drain_klaviyo(loaded, store, 2, client=client)
    assert members(sandbox, list_id) == set()

    plan_day(store, 3, everyone, everyone)
    with store.transaction() as conn:  # as the shipped scenarios declare it
        conn.execute(
            "UPDATE outbox SET payload = json_set(payload, '$.batch_size', 10000) WHERE day = 3"
        )
    before = client.stats.requests["add_to_list"]
    report = drain_klaviyo(loaded, store, 3, client=client)
    assert client.stats.requests["add_to_list"] - before == 2  # 1,000 + 500 by id
    assert report.sent == 1500 and report.problems == []
    assert members(sandbox, list_id) == emails(everyone)


def test_a_phone_owned_by_another_klaviyo_profile_does_not_keep_anyone_out_of_the_list(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """A phone that belongs to another profile would make Klaviyo refuse (or move) a profile;
    list imports carry the email alone, so the email's profile is all that is touched."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    shared = "+420777000111"
    everyone = add_customers(store, 6, phones={1: shared, 4: shared})
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone[:1], everyone)  # c1 takes the phone in Klaviyo
    drain_klaviyo(loaded, store, 1, client=client)
    # c4 already has a Klaviyo profile of its own, without the phone
    ops.import_profiles(client, [{"email": "c4@example.com"}], None, poll=0.02)
    plan_day(store, 2, everyone[:5], everyone)
    report = drain_klaviyo(loaded, store, 2, client=client)
    assert report.on_hold == 0
    assert members(sandbox, report.lists["exclusion"]) == emails(everyone[:5])
    assert statuses(store) == {"sent": 6}
    account = sandbox.app.account
    c4 = next(p for p in account.profiles.values() if p["attributes"]["email"] == "c4@example.com")
    assert c4["attributes"].get("phone_number") in (None, "")  # the phone stayed with c1
