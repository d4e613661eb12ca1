"""Klaviyo lists as consent categories (seed 004): a list the plan maps to a category is read
from Klaviyo (the sandbox, over real HTTP) and its members become subscribed in it; a member
who leaves is unsubscribed, as is everyone who unsubscribed from email marketing; a scenario's
condition on the category then admits only the subscribed. Names the plan does not map are
refused at their line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
from typer.testing import CliRunner

from tests.support.consent import KEY_ENV, add_customers, write_plan
from warmup.cli import app
from warmup.consent import categories as categories_module
from warmup.consent.categories import pull_consent_lists_for_plan
from warmup.consent.pull import pull_for_plan
from warmup.engine import run_day
from warmup.engine.explainer import explain
from warmup.plan import LoadedPlan, load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.lists import (
    Member,
    find_or_create_list,
    import_profiles,
    iter_members,
    remove_from_list,
    unsubscribe,
)
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.store import consents, now_iso, open_store

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
EMAILS = [f"k{i}@example.com" for i in range(6)]


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=7)) as running:
        yield running


def settle(sandbox: RunningSandbox, client: KlaviyoClient) -> None:
    account = sandbox.app.account
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        job.status != "complete" for job in account.jobs.values()
    ):
        time.sleep(0.02)
        client.get("/api/lists")


def newsletter_scenario(folder: Path, channel: str = "newsletter") -> Path:
    """Variant 1 whose #7 admits only the category's subscribers."""
    text = (REPO / "scenarios" / "variant-1.yaml").read_text()
    old = "consent: {channel: email, status_in: [subscribed, never_subscribed]}"
    assert old in text
    path = folder / "newsletter.yaml"
    path.write_text(text.replace(old, f"consent: {{channel: {channel}, status_in: [subscribed]}}"))
    return path


def plan(tmp_path: Path, base_url: str, lists: str, channel: str = "newsletter") -> LoadedPlan:
    loaded = write_plan(tmp_path, base_url=base_url)
    text = loaded.path.read_text()
    text = text.replace("    list_mode: force_add\n", f"    list_mode: force_add\n{lists}")
    text = text.replace(
        f"scenario: {REPO}/scenarios/variant-1.yaml",
        f"scenario: {newsletter_scenario(tmp_path, channel)}",
    )
    loaded.path.write_text(text)
    return load_plan(loaded.path)


def categories(loaded: LoadedPlan) -> dict[str, str]:
    store = open_store(loaded.store_path, create=False)
    try:
        return {
            str(e): str(s)
            for e, s in store.conn.execute(
                "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id "
                "WHERE s.channel = 'newsletter'"
            )
        }
    finally:
        store.close()


def test_a_klaviyo_list_is_a_consent_category(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(
        tmp_path, sandbox.base_url, '    consent_lists: {newsletter: {name: "Newsletter"}}\n'
    )
    store = open_store(loaded.store_path)
    add_customers(store, EMAILS)
    store.close()
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        list_id, _ = find_or_create_list(client, "Newsletter")
        # k0–k3 signed up to the newsletter in Klaviyo, and someone warmup does not know
        import_profiles(client, [{"email": e} for e in [*EMAILS[:4], "x@example.com"]], list_id)
        settle(sandbox, client)
        pulled = pull_consent_lists_for_plan(loaded)
        assert [(p.category, p.list_id, p.members, p.subscribed) for p in pulled] == [
            ("newsletter", list_id, 4, 4)
        ]
        assert categories(loaded) == {e: "subscribed" for e in EMAILS[:4]}

        # the dry run says what the store holds and counts the list's read in the day's work
        preview = run_day(
            loaded, 1, now=pendulum.datetime(2026, 12, 1, 9, tz="Europe/Prague"), dry_run=True
        )
        assert preview.klaviyo_work is not None
        assert (
            "consent categories from Klaviyo lists (read before the day): newsletter "
            "(list 'Newsletter'): 4 subscribed" in preview.klaviyo_work["notes"]
        )
        assert "read consent list newsletter" in str(preview.klaviyo_work)
        # the condition admits the subscribed only; explain names the category
        run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
        store = open_store(loaded.store_path, create=False)
        try:
            mailed = {
                str(e)
                for (e,) in store.conn.execute(
                    "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
                    "WHERE o.kind = 'email' AND o.day = 1"
                )
            }
        finally:
            store.close()
        assert mailed == set(EMAILS[:4])
        assert "newsletter consent never_subscribed" in "\n".join(
            explain(loaded, 1, EMAILS[5]).lines
        )

        # k1 leaves the list ("Unsubscribed from List"), k2 unsubscribes from email
        # marketing ("rejects all mapped categories"), k4 joins
        members = {m.email: m.id for m in iter_members(client, list_id)}
        remove_from_list(client, list_id, [members[EMAILS[1]]])
        unsubscribe(client, [EMAILS[2]])
        import_profiles(client, [{"email": EMAILS[4]}], list_id)
        settle(sandbox, client)
        assert pull_for_plan(loaded) == 1  # k2's email consent first
        again = pull_consent_lists_for_plan(loaded)
        assert (again[0].subscribed, again[0].unsubscribed) == (1, 2)
        assert categories(loaded) == {
            EMAILS[0]: "subscribed",
            EMAILS[1]: "unsubscribed",
            EMAILS[2]: "unsubscribed",
            EMAILS[3]: "subscribed",
            EMAILS[4]: "subscribed",
        }
        # each change of an existing row is in the history
        store = open_store(loaded.store_path, create=False)
        try:
            history = store.conn.execute(
                "SELECT c.email, h.old_status, h.new_status, h.source FROM consent_changes h "
                "JOIN customers c ON c.id = h.customer_id WHERE h.channel = 'newsletter'"
            ).fetchall()
        finally:
            store.close()
        assert sorted(tuple(r) for r in history) == [
            (EMAILS[1], "subscribed", "unsubscribed", "klaviyo-list"),
            (EMAILS[2], "subscribed", "unsubscribed", "klaviyo-list"),
        ]
        # nothing changed in Klaviyo: nothing changes in the store
        assert [(p.subscribed, p.unsubscribed) for p in pull_consent_lists_for_plan(loaded)] == [
            (0, 0)
        ]
    # `warmup sync --pull` says what each category did
    result = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert f"consent category newsletter (Klaviyo list {list_id}): 4 customers in the list" in (
        result.output
    )


def test_sync_pull_before_the_first_day_pulls_and_succeeds(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team pulls consent (and engagement) before day 1 to see what the dry run will rank
    by: the pull is done and nothing else is due, so exit 0 (it was exit 2, "no day has run
    yet, so there is nothing to sync", after the pull had changed the store)."""
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(
        tmp_path, sandbox.base_url, '    consent_lists: {newsletter: {name: "Newsletter"}}\n'
    )
    store = open_store(loaded.store_path)
    add_customers(store, EMAILS)
    store.close()
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        list_id, _ = find_or_create_list(client, "Newsletter")
        import_profiles(client, [{"email": e} for e in EMAILS[:2]], list_id)
        settle(sandbox, client)
    result = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert result.exit_code == 0, result.output
    assert "2 customers in the list; 2 subscribed" in result.output
    assert "no day has run yet: nothing to drive or read back" in result.output
    assert categories(loaded) == {e: "subscribed" for e in EMAILS[:2]}
    # without --pull (or with --verify) it is still an error to sync before any day
    for extra in ([], ["--pull", "--verify"]):
        refused = runner.invoke(app, ["sync", str(loaded.path), *extra])
        assert refused.exit_code == 2, refused.output
        assert "no day has run yet" in refused.output


def test_a_list_name_klaviyo_does_not_have_stops_with_what_to_change(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(tmp_path, sandbox.base_url, '    consent_lists: {newsletter: {name: "Nope"}}\n')
    store = open_store(loaded.store_path)
    add_customers(store, EMAILS[:1])
    store.close()
    result = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert result.exit_code == 2, result.output
    assert "consent category newsletter: Klaviyo has no list named 'Nope'" in result.output
    assert "Traceback" not in result.output


def test_an_sms_unsubscribe_rejects_every_mapped_category(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 004's mapping: "Unsubscribed from SMS" is a consent rejected for all mapped
    categories, as "Unsubscribed from Email Marketing" is (only the email one was applied)."""
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(
        tmp_path, sandbox.base_url, '    consent_lists: {newsletter: {name: "Newsletter"}}\n'
    )
    store = open_store(loaded.store_path)
    ids = add_customers(store, EMAILS[:2])
    with store.transaction() as conn:
        consents.set_status(
            conn,
            ids[EMAILS[1]],
            "unsubscribed",
            changed_at=now_iso(),
            source="test",
            keep=(),
            channel="sms",
        )
    store.close()
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        list_id, _ = find_or_create_list(client, "Newsletter")
        import_profiles(client, [{"email": e} for e in EMAILS[:2]], list_id)
        settle(sandbox, client)
    pull_consent_lists_for_plan(loaded)
    assert categories(loaded) == {EMAILS[0]: "subscribed", EMAILS[1]: "unsubscribed"}


def test_a_list_id_klaviyo_does_not_have_stops_with_what_to_change(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a name does (it was exit 1 with Klaviyo's bare 404 for the list's members)."""
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(tmp_path, sandbox.base_url, "    consent_lists: {newsletter: {id: NoSuch}}\n")
    store = open_store(loaded.store_path)
    add_customers(store, EMAILS[:1])
    store.close()
    result = runner.invoke(app, ["sync", str(loaded.path), "--pull"])
    assert result.exit_code == 2, result.output
    assert "consent category newsletter: Klaviyo has no list with id 'NoSuch'" in result.output
    assert "consent_lists.newsletter" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("lists", "channel", "where", "message"),
    [
        (
            "",
            "newsletter",
            "newsletter.yaml",
            "node 7 tests consent 'newsletter', which is neither",
        ),
        (
            '    consent_lists: {newsletter: {name: "Newsletter"}}\n',
            "newsleter",
            "newsletter.yaml",
            "did you mean 'newsletter'?",
        ),
        ("    consent_lists: {email: {id: Ab12Cd}}\n", "email", "plan.yaml", "is a channel"),
        (
            "    consent_lists: {News: {id: Ab12Cd}}\n",
            "email",
            "plan.yaml",
            "not a consent category",
        ),
        ("    consent_lists: {news: {id: A, name: B}}\n", "email", "plan.yaml", "exactly one of"),
        # the lists warmup fills itself are no consent category (every customer it excludes
        # would read as subscribed), nor is an empty name
        (
            '    consent_lists: {news: {name: "Warmup exclusions"}}\n',
            "email",
            "plan.yaml",
            "consent category 'news' is mapped to the exclusion list, which warmup fills",
        ),
        (
            '    consent_lists: {news: {name: "Warmup unsubscribes"}}\n',
            "email",
            "plan.yaml",
            "is mapped to the unsubscribe list",
        ),
        ('    consent_lists: {news: {name: ""}}\n', "email", "plan.yaml", "at least 1 character"),
    ],
)
def test_consent_names_are_checked_at_their_line(
    tmp_path: Path, lists: str, channel: str, where: str, message: str
) -> None:
    loaded = write_plan(tmp_path)
    text = loaded.path.read_text()
    text = text.replace("    list_mode: force_add\n", f"    list_mode: force_add\n{lists}")
    scenario = newsletter_scenario(tmp_path, channel)
    text = text.replace(f"scenario: {REPO}/scenarios/variant-1.yaml", f"scenario: {scenario}")
    loaded.path.write_text(text)
    result = runner.invoke(app, ["validate", str(loaded.path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    source = scenario if where == "newsletter.yaml" else loaded.path
    needle = f"channel: {channel}," if where == "newsletter.yaml" else "consent_lists:"
    line = next(i for i, row in enumerate(source.read_text().splitlines(), 1) if needle in row)
    assert f"{source.name}:{line}" in result.output


def test_a_pull_killed_while_reading_a_list_changes_nothing(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    loaded = plan(
        tmp_path, sandbox.base_url, '    consent_lists: {newsletter: {name: "Newsletter"}}\n'
    )
    store = open_store(loaded.store_path)
    add_customers(store, EMAILS)
    store.close()
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        list_id, _ = find_or_create_list(client, "Newsletter")
        import_profiles(client, [{"email": e} for e in EMAILS[:4]], list_id)
        settle(sandbox, client)

    def dies_after_one(client: KlaviyoClient, list_id: str) -> Iterator[Member]:
        # the list's real first page, then the connection drops
        yield next(iter_members(client, list_id))
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(categories_module, "iter_members", dies_after_one)
    with pytest.raises(ConnectionError):
        pull_consent_lists_for_plan(loaded)
    assert categories(loaded) == {}
    monkeypatch.undo()
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    assert [p.subscribed for p in pull_consent_lists_for_plan(loaded)] == [4]
