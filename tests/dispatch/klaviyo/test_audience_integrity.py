"""The seven ways issue 11 broke the audience promise, each against the sandbox over HTTP:
a list change counts as sent only when its email is read back from Klaviyo's list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

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
from warmup.dispatch.klaviyo import NOT_IN_LIST, drain_klaviyo, sync, verify_lists
from warmup.errors import Refused
from warmup.providers.klaviyo import lists as ops
from warmup.report.status import plan_status, render_table
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.store import Store, open_store
from warmup.store.outbox import Outbox


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=11, strict=True)) as running:
        monkeypatch.setenv(KEY_ENV, running.api_key)
        yield running


def members(sandbox: RunningSandbox, list_id: str) -> set[str]:
    account = sandbox.app.account
    return {account.profiles[pid]["attributes"]["email"] for pid in account.members[list_id].seq_of}


def set_email(store: Store, customer: int, email: str) -> None:
    store.conn.execute("UPDATE customers SET email = ? WHERE id = ?", (email, customer))


def sent_emails(store: Store) -> set[str]:
    return {
        str(e)
        for (e,) in store.conn.execute(
            "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.kind = 'webhook' AND o.status = 'sent' AND "
            "json_extract(o.payload, '$.list') = 'exclusion'"
        )
    }


def test_1_a_shared_phone_never_moves_a_profile(tmp_path: Path, sandbox: RunningSandbox) -> None:
    """alice and bob share a phone: were the phone imported, Klaviyo would give alice's
    profile bob's email. List imports carry the email alone, so all three are read back."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 3, phones={1: "+420700000001", 2: "+420700000001"})
    for cid, name in zip(everyone, ("alice", "bob", "carol"), strict=True):
        set_email(store, cid, f"{name}@example.com")
    plan_day(store, 1, everyone, everyone)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    report = drain_klaviyo(loaded, store, 1, client=client)
    wanted = {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert members(sandbox, report.lists["exclusion"]) == wanted == sent_emails(store)
    assert verify_lists(loaded, store, 1, client=client).ok


def test_1b_the_sandbox_does_move_a_profile_by_phone(sandbox: RunningSandbox) -> None:
    """The adversity is real in the sandbox: an import matching by phone changes the email."""
    client = fast_client(sandbox.base_url, sandbox.api_key)
    people = [
        {"email": "alice@example.com", "phone": "+420700000001"},
        {"email": "bob@example.com", "phone": "+420700000001"},
    ]
    outcome = ops.import_profiles(client, people, None, poll=0.02)
    assert outcome.errors == {}
    emails = {p["attributes"]["email"] for p in sandbox.app.account.profiles.values()}
    assert emails == {"bob@example.com"}


def test_1c_a_profile_whose_email_changed_under_us_is_not_counted(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Another client changes a member's email after warmup added it: the read-back does not
    see the customer's email, so it joins again by email before its row counts as sent."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 10)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone[:5], everyone)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    account = sandbox.app.account
    moved = account.profile_by("email", "c2@example.com")
    assert moved is not None
    account._apply(moved, {"email": "someone-else@example.com"})
    plan_day(store, 2, everyone[:5], everyone)
    report = drain_klaviyo(loaded, store, 2, client=client)
    assert report.already_members == 5 and report.requests_repair == 1
    assert {f"c{i}@example.com" for i in range(1, 6)} <= members(sandbox, list_id)
    assert statuses(store) == {"sent": 10}


def test_2_per_profile_import_errors_are_read_by_pointer_in_both_shapes(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(loaded.store_path)  # the one `warmup status` reads
    everyone = add_customers(store, 6)
    set_email(store, 2, "bad..dots@example.com")
    set_email(store, 5, "x.@example.com")
    plan_day(store, 1, everyone, everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert report.sent == 4 and report.on_hold == 2
    shapes = {
        "email" in (e["attributes"]["original_payload"] or {})
        for job in sandbox.app.account.jobs.values()
        for e in job.errors
    }
    assert shapes == {True, False}  # both payload shapes were met
    held = {r["email"]: r["error"] for r in Outbox(store).list_change_backlog()["attention"]}
    assert set(held) == {"bad..dots@example.com", "x.@example.com"}
    assert all("Invalid email address" in reason for reason in held.values())
    # `warmup status` shows held people by reason
    text = render_table(plan_status(loaded, now=datetime(2020, 1, 1, 12, tzinfo=UTC)))
    assert "held: 2 × Klaviyo: Invalid email address" in text


def test_3_a_later_day_run_before_its_date_changes_no_list(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)  # Europe/Prague, margin 2 h
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 20)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone[:10], everyone)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    plan_day(store, 2, everyone[10:], everyone)
    early = datetime(2020, 1, 1, 20, 0, tzinfo=UTC)  # still day 1 in Prague
    reject(store, 2, [15])  # an unsubscribe is never deferred
    report = dispatch_day(loaded, store, 2, klaviyo_client=client, clock=lambda: early)
    assert report.klaviyo.come_back_at == "2020-01-01T23:00:00+00:00"
    assert report.klaviyo.sent == 1 and report.klaviyo.removed == 0
    assert members(sandbox, report.klaviyo.lists["unsubscribe"]) == {"c15@example.com"}
    assert len(members(sandbox, list_id)) == 10
    # day 2 has begun, but day 1 owns its members until midnight + 2 h in Prague
    after_midnight = datetime(2020, 1, 2, 0, 30, tzinfo=UTC)
    report_k = drain_klaviyo(loaded, store, 2, client=client, now=after_midnight)
    assert report_k.removed == 0 and len(members(sandbox, list_id)) == 20
    late = datetime(2020, 1, 2, 1, 1, tzinfo=UTC)
    assert drain_klaviyo(loaded, store, 2, client=client, now=late).removed == 10
    assert len(members(sandbox, list_id)) == 10


@pytest.mark.parametrize("list_mode", ["force_add", "subscribe"])
@pytest.mark.parametrize("via_api", [False, True])
def test_4_an_unsubscribe_never_subscribes_anyone(
    tmp_path: Path, sandbox: RunningSandbox, list_mode: str, via_api: bool
) -> None:
    loaded = write_plan(
        tmp_path, sandbox.base_url, list_mode=list_mode, unsubscribe_via_api=via_api
    )
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 4)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    ops.import_profiles(client, [{"email": "c3@example.com"}], None, poll=0.02)
    plan_day(store, 1, [], everyone)
    reject(store, 1, [3])
    report = drain_klaviyo(loaded, store, 1, client=client)
    assert report.sent == 1
    assert client.stats.requests["subscribe"] == 0
    sandbox.app.flush()  # let the unsubscribe job finish
    profile = sandbox.app.account.profile_by("email", "c3@example.com")
    assert profile is not None
    assert profile["consent"] == ("UNSUBSCRIBED" if via_api else "NEVER_SUBSCRIBED")
    assert members(sandbox, report.lists["unsubscribe"]) == {"c3@example.com"}


def test_6_dead_ids_fall_back_to_email_for_that_person_only(
    tmp_path: Path, strict: RunningSandbox
) -> None:
    """A strict server 404s a whole batch for one unknown id: the rest of the batch goes on by
    id and the dead one joins by email."""
    loaded = write_plan(tmp_path, strict.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 8)
    client = fast_client(strict.base_url, strict.api_key)
    plan_day(store, 1, everyone, everyone)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    assert (
        store.conn.execute("SELECT count(*) FROM customers WHERE klaviyo_id_confirmed").fetchone()[
            0
        ]
        == 8
    )
    dead = strict.app.account.profile_by("email", "c4@example.com")
    assert dead is not None
    strict.app.account.members[list_id].remove(dead["id"])
    del strict.app.account.profiles[dead["id"]]
    strict.app.account.index["email"].pop("c4@example.com")
    plan_day(store, 2, [], everyone)
    drain_klaviyo(loaded, store, 2, client=client)  # the cut empties the list
    plan_day(store, 3, everyone, everyone)
    report = drain_klaviyo(loaded, store, 3, client=client)
    assert report.dead_ids == 1 and report.requests_repair == 1 and report.on_hold == 0
    assert members(strict, list_id) == {f"c{i}@example.com" for i in everyone}


def test_6b_a_204_for_an_unknown_id_is_caught_by_the_read_back(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 4)
    store.conn.execute("UPDATE customers SET klaviyo_id = '01DEAD' || id, klaviyo_id_confirmed = 1")
    plan_day(store, 1, everyone, everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert report.requests_repair == 1 and report.sent == 4
    assert members(sandbox, report.lists["exclusion"]) == {f"c{i}@example.com" for i in everyone}


def test_7_a_strict_server_refusing_non_ascii_local_parts_holds_them(
    tmp_path: Path, strict: RunningSandbox
) -> None:
    loaded = write_plan(tmp_path, strict.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 40)
    for cid in everyone[::10]:
        set_email(store, cid, f"sofía.{cid}@example.com")
    plan_day(store, 1, everyone, everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(strict.base_url, strict.api_key))
    assert report.sent == 36 and report.on_hold == 4
    list_id = report.lists["exclusion"]
    assert sent_emails(store) == members(strict, list_id)
    assert not any("sofía" in e for e in sent_emails(store))


def test_a_member_another_client_drops_or_readdresses_is_joined_again(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Nothing is marked sent on Klaviyo's acknowledgement alone: another client's edit right
    after the import's list add is caught by the read-back and repaired the same day."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 30)
    sandbox.app.account.meddle, sandbox.app.account.meddle_left = 1.0, 1
    plan_day(store, 1, everyone, everyone)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    report = drain_klaviyo(loaded, store, 1, client=client)
    assert len(sandbox.app.account.meddled) == 1
    assert report.requests_repair == 1 and report.sent == 30 and report.on_hold == 0
    assert sent_emails(store) == {f"c{i}@example.com" for i in everyone}
    assert sent_emails(store) <= members(sandbox, report.lists["exclusion"])


def test_5_a_list_another_plan_claimed_is_refused_and_never_stripped(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Plans A and B both name their list "Warmup exclusions": B's repair refuses it, and with
    --claim still removes nobody B did not add."""
    client = fast_client(sandbox.base_url, sandbox.api_key)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plan_a, plan_b = (
        write_plan(tmp_path / "a", sandbox.base_url),
        write_plan(tmp_path / "b", sandbox.base_url),
    )
    store_a, store_b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    plan_day(store_a, 1, add_customers(store_a, 5), range(1, 6))
    list_id = drain_klaviyo(plan_a, store_a, 1, client=client).lists["exclusion"]
    people_b = add_customers(store_b, 3, start=10)
    plan_day(store_b, 1, people_b, people_b)
    with pytest.raises(Refused) as refused:
        drain_klaviyo(plan_b, store_b, 1, client=client)
    assert "--claim" in refused.value.render() and refused.value.exit_code == 3
    with pytest.raises(Refused):
        sync(plan_b, store_b, 1, repair=True, client=client)
    assert drain_klaviyo(plan_b, store_b, 1, client=client, claim=True).lists["exclusion"] == (
        list_id
    )
    report = sync(plan_b, store_b, 1, repair=True, claim=True, client=client)
    assert report.verify is not None and report.verify.diffs[0].foreign == 5
    assert len(members(sandbox, list_id)) == 8  # A's five are still there


def test_init_gives_each_plan_its_own_list_names() -> None:
    from datetime import date

    from warmup.app.scaffold import plan_text

    text = plan_text(
        name="shop-a", variant=1, timezone="UTC", start=date(2026, 1, 1), ramp_values=[10]
    )
    assert 'name: "Warmup exclusions shop-a"' in text


def test_the_read_back_cost_at_the_l_tier() -> None:
    from warmup.providers.klaviyo.endpoints import readback_cost

    assert readback_cost(0) == (0, 0.0)
    assert readback_cost(7_000) == (70, 70 / 75)
    # 100k recipients: 1,000 pages; 700 a minute, the last 300 at 75 a second
    assert readback_cost(100_000) == (1000, 60 + 300 / 75)
    assert readback_cost(100_000, 0.5)[1] > readback_cost(100_000)[1]


def test_someone_klaviyo_never_shows_in_the_list_is_held_and_not_mailed(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Klaviyo acknowledges every call but one profile never appears in the list: its row is
    held with "not in the list after sync" and its email waits (is never released)."""
    account = sandbox.app.account
    add = account.add_members

    def add_but_c3(list_id: str, profile_ids: list[str]) -> None:
        add(
            list_id,
            [
                p
                for p in profile_ids
                if account.profiles[p]["attributes"].get("email") != "c3@example.com"
            ],
        )

    monkeypatch.setattr(account, "add_members", add_but_c3)
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 5)
    plan_day(store, 1, everyone, everyone)
    report = drain_klaviyo(loaded, store, 1, client=fast_client(sandbox.base_url, sandbox.api_key))
    assert report.sent == 4 and report.on_hold == 1 and report.requests_repair == 1
    [held] = Outbox(store).list_change_backlog()["attention"]
    assert (held["email"], held["error"]) == ("c3@example.com", NOT_IN_LIST)
    assert Outbox(store).list_change_backlog()["held_by_reason"] == {NOT_IN_LIST: 1}


def test_re_running_an_earlier_day_keeps_the_later_days_exclusions(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """Found by a new-user try: day 1 run again after day 2 cut the list back to day 1."""
    loaded = write_plan(tmp_path, sandbox.base_url)
    store = open_store(tmp_path / "s.db")
    everyone = add_customers(store, 20)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    plan_day(store, 1, everyone[:5], everyone)
    list_id = drain_klaviyo(loaded, store, 1, client=client).lists["exclusion"]
    plan_day(store, 2, everyone[5:15], everyone)
    day_2 = datetime(2020, 1, 2, 9, 0, tzinfo=UTC)  # day 1 over (+2 h margin) in Prague
    assert drain_klaviyo(loaded, store, 2, client=client, now=day_2).removed == 5
    expected = {f"c{i}@example.com" for i in everyone[5:15]}
    assert members(sandbox, list_id) == expected
    again = drain_klaviyo(loaded, store, 1, client=client, now=day_2)
    assert again.removed == 0
    assert members(sandbox, list_id) == expected
