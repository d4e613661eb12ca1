"""Engagement from Klaviyo (issue 17): pulled from the sandbox's events API into the store,
incrementally and resumably, then used by the allocation's ranking and by conditions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.dispatch.klaviyo.klaviyo_helpers import KEY_ENV, add_customers, fast_client, write_plan
from tests.support.storefill import fill_store
from tests.support.storefill import write_plan as write_engine_plan
from warmup.engagement import pull as pull_module
from warmup.engagement.pull import pull_engagement
from warmup.engagement.ranking import customer_score
from warmup.engine.day import run_day
from warmup.engine.explainer import explain
from warmup.errors import PlanError
from warmup.plan import LoadedPlan, load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.events_api import event_pages
from warmup.sandbox import RunningSandbox
from warmup.store import open_store


def prague(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/Prague"))


ENGAGEMENT = "engagement: {source: klaviyo, window_days: 30}\n"


def klaviyo_plan(tmp: Path, base_url: str, extra: str = ENGAGEMENT) -> LoadedPlan:
    loaded = write_plan(tmp, base_url)
    loaded.path.write_text(loaded.path.read_text() + extra)
    return load_plan(loaded.path)


def record(client: KlaviyoClient, email: str, metric: str, when: datetime, uid: str) -> None:
    """Klaviyo records an email event (warmup itself never creates events: plain httpx)."""
    response = client._http.post(
        "/api/events",
        json={
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {},
                    "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                    "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
                    "time": when.isoformat(),
                    "unique_id": uid,
                },
            }
        },
    )
    assert response.status_code == 202, response.text


def wait_for_events(client: KlaviyoClient, n: int) -> None:
    """Event creation is a job at Klaviyo (202): wait until the sandbox has recorded ``n``."""
    for _ in range(200):
        if len(client.get("/api/events", {"page[size]": "1000"})["data"]) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the sandbox did not record {n} events")


def stored(path: Path) -> dict[str, int]:
    with closing(open_store(path, create=False)) as store:
        return {
            str(kind): int(n)
            for kind, n in store.backend.execute(
                "SELECT kind, count(*) FROM klaviyo_events GROUP BY kind"
            )
        }


@pytest.fixture
def seeded(
    sandbox: RunningSandbox,
    tmp_path: Path,
    store_location: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LoadedPlan, KlaviyoClient]]:
    """The pull's tests run on SQLite and PostgreSQL (the plan's store: ``WARMUP_STORE``)."""
    monkeypatch.setenv("WARMUP_STORE", store_location)
    loaded = klaviyo_plan(tmp_path, sandbox.base_url)
    with closing(open_store(loaded.store_path)) as store:
        add_customers(store, 3)
    client = fast_client(sandbox.base_url, sandbox.api_key)
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        ("c1@example.com", "Opened Email", 1),
        ("c1@example.com", "Opened Email", 2),
        ("c2@example.com", "Clicked Email", 1),
        ("c3@example.com", "Bounced Email", 1),
        ("stranger@example.com", "Opened Email", 1),  # not the plan's customer
        ("c2@example.com", "Opened Email", 40),  # before the window of the first pull
    ]
    for i, (email, metric, days_ago) in enumerate(events):
        record(client, email, metric, now - timedelta(days=days_ago, seconds=i), f"u{i}")
    wait_for_events(client, len(events))
    try:
        yield loaded, client
    finally:
        client.close()


def test_pull_keeps_the_plans_customers_events_once(
    seeded: tuple[LoadedPlan, KlaviyoClient],
) -> None:
    loaded, client = seeded
    with closing(open_store(loaded.store_path, create=False)) as store:
        first = pull_engagement(loaded, store, client)
    assert stored(loaded.store_path) == {"opened": 2, "clicked": 1, "bounced": 1}
    assert first.read["opened"] == 3  # the stranger's open was read and not kept
    assert sorted(first.missing) == ["marked_as_spam", "received"]
    assert "marked_as_spam" not in first.read and "Marked Email as Spam" in first.summary()
    # Incremental: the next pull reads from the cursor, keeps nothing twice, then a new event.
    with closing(open_store(loaded.store_path, create=False)) as store:
        again = pull_engagement(loaded, store, client)
        assert sum(again.stored.values()) == 0
        record(client, "c3@example.com", "Clicked Email", datetime.now(UTC), "later")
        wait_for_events(client, 7)
        latest = pull_engagement(loaded, store, client)
    assert latest.stored == {"opened": 0, "clicked": 1, "bounced": 0}
    assert stored(loaded.store_path) == {"opened": 2, "clicked": 2, "bounced": 1}


def test_a_pull_killed_after_a_page_resumes_without_gap(
    seeded: tuple[LoadedPlan, KlaviyoClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded, client = seeded
    pages_served = 0

    def one_page_then_die(c: KlaviyoClient, metric_id: str, since: str) -> Iterator[Any]:
        nonlocal pages_served
        for page in event_pages(c, metric_id, since, page_size=1):
            if pages_served == 1:
                raise KeyboardInterrupt  # the process dies mid-pull
            pages_served += 1
            yield page

    monkeypatch.setattr(pull_module, "event_pages", one_page_then_die)
    with (
        closing(open_store(loaded.store_path, create=False)) as store,
        pytest.raises(KeyboardInterrupt),
    ):
        pull_engagement(loaded, store, client)
    assert sum(stored(loaded.store_path).values()) == 1  # the first page was committed
    monkeypatch.setattr(pull_module, "event_pages", event_pages)
    with closing(open_store(loaded.store_path, create=False)) as store:
        pull_engagement(loaded, store, client)
    assert stored(loaded.store_path) == {"opened": 2, "clicked": 1, "bounced": 1}


def test_sync_pull_prints_the_engagement_pulled(
    seeded: tuple[LoadedPlan, KlaviyoClient], sandbox: RunningSandbox
) -> None:
    from typer.testing import CliRunner

    from warmup.cli import app

    loaded, _ = seeded
    result = CliRunner().invoke(
        app, ["sync", str(loaded.path), "--pull"], env={KEY_ENV: sandbox.api_key}
    )
    assert "engagement pulled from Klaviyo: received +0, opened +2, clicked +1" not in result.output
    assert "opened +2, clicked +1, bounced +1" in result.output, result.output


def test_a_rehearsal_clock_sets_the_first_pulls_window(
    seeded: tuple[LoadedPlan, KlaviyoClient], sandbox: RunningSandbox
) -> None:
    # the window (30 days) used to end at the machine's time whatever --now said: at a
    # rehearsal clock 20 days back, the open of 40 days ago is inside it
    from typer.testing import CliRunner

    from warmup.cli import app

    loaded, _ = seeded
    earlier = (datetime.now(UTC) - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M%z")
    result = CliRunner().invoke(
        app,
        ["sync", str(loaded.path), "--pull", "--now", earlier],
        env={KEY_ENV: sandbox.api_key},
    )
    assert "opened +3, clicked +1, bounced +1" in result.output, result.output


# ranking and conditions -------------------------------------------------------------------
@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"  # where tests/conftest.py points WARMUP_STORE


def add_events(path: Path, rows: list[tuple[int, str, str]]) -> None:
    with closing(open_store(path, create=False)) as store, store.transaction() as conn:
        conn.executemany(
            "INSERT INTO klaviyo_events (id, customer_id, kind, occurred_at) VALUES (?, ?, ?, ?)",
            [(f"e{i}", cid, kind, at) for i, (cid, kind, at) in enumerate(rows)],
        )


def engine_plan(tmp_path: Path, extra: str, scenario: Path | None = None) -> LoadedPlan:
    path = write_engine_plan(tmp_path, variant=1, scenario=scenario)
    path.write_text(path.read_text() + extra)
    return load_plan(path)


def eligible_ids(loaded: LoadedPlan) -> list[int]:
    with closing(open_store(loaded.store_path, create=False)) as store:
        return [
            int(r[0])
            for r in store.conn.execute(
                "SELECT c.id FROM customers c JOIN consents e ON e.customer_id = c.id "
                "JOIN segment_members m ON m.customer_id = c.id WHERE c.email_valid = 1 "
                "AND e.status IN ('subscribed', 'never_subscribed') ORDER BY c.id"
            )
        ]


def test_klaviyo_engagement_ranks_most_engaged_first(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 200, seed=3)
    loaded = engine_plan(
        tmp_path, "engagement: {source: klaviyo, weights: {opened: 1, clicked: 3, bounced: -9}}\n"
    )
    a, b, c = eligible_ids(loaded)[-3:]
    inside, outside = "2026-11-20T08:00:00+00:00", "2026-08-01T08:00:00+00:00"
    add_events(
        store_path,
        [
            (a, "opened", inside),  # 1
            (b, "clicked", inside),  # 3: first
            (b, "bounced", outside),  # outside the 90-day window: not counted
            (c, "opened", inside),
            (c, "opened", inside),  # 2: second
        ],
    )
    result = run_day(loaded, 1, dry_run=True)
    emails = [s["email"] for s in result.samples]
    assert emails[:3] == [f"user{b}@example.com", f"user{c}@example.com", f"user{a}@example.com"]
    with closing(open_store(store_path, create=False)) as store:
        start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # midnight in Prague
        assert customer_score(store.conn, loaded.plan.engagement, b, start) == (3.0, {"clicked": 1})
    # The export's ranking stays the default: without the setting, b is not first.
    plain = run_day(engine_plan(tmp_path, ""), 1, dry_run=True)
    assert plain.samples[0]["email"] != f"user{b}@example.com"


def test_a_condition_tests_klaviyo_engagement(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 200, seed=3)
    scenario = tmp_path / "engaged.yaml"
    text = (Path(__file__).resolve().parents[3] / "scenarios/variant-1.yaml").read_text()
    scenario.write_text(
        text.replace(
            "    email_valid: true\n",
            "    email_valid: true\n"
            "    engagement: {kinds: [bounced, marked_as_spam], at_most: 0, within_days: 30}\n",
            1,
        )
    )
    loaded = engine_plan(tmp_path, ENGAGEMENT, scenario)
    before = {n.id: n for n in run_day(loaded, 1, dry_run=True).funnel}["7"]
    target = eligible_ids(loaded)[0]
    add_events(store_path, [(target, "bounced", "2026-11-25T08:00:00+00:00")])
    after = {n.id: n for n in run_day(loaded, 1, dry_run=True).funnel}["7"]
    assert after.out["yes"] == before.out["yes"] - 1


def test_an_engagement_condition_without_a_klaviyo_source_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "engaged.yaml"
    text = (Path(__file__).resolve().parents[3] / "scenarios/variant-1.yaml").read_text()
    scenario.write_text(
        text.replace(
            "    email_valid: true\n",
            "    email_valid: true\n    engagement: {kinds: [opened], at_least: 1}\n",
            1,
        )
    )
    with pytest.raises(PlanError) as caught:
        engine_plan(tmp_path, "", scenario)
    rendered = caught.value.render()
    assert "engaged.yaml:" in rendered and "engagement.source: klaviyo" in rendered, rendered


# seed 004's rules at validate ---------------------------------------------------------------
def test_variant_1_refuses_a_reused_template_at_its_line(tmp_path: Path) -> None:
    path = write_engine_plan(
        tmp_path, variant=1, days=[5, 5, 10], templates=["day-01", "day-02", "day-01"]
    )
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    lines = path.read_text().splitlines()
    (issue,) = caught.value.issues
    assert issue.line is not None and "day: 3" in lines[issue.line - 1]
    assert "reuses template 'day-01' of day 1" in issue.message
    path.write_text(path.read_text() + "  template_reuse: allow\n")  # under schedule:
    load_plan(path)


def test_variant_2_reuses_templates_within_its_lead_days(tmp_path: Path) -> None:
    templates = ["day-01", "day-01", "day-01", "day-02"]
    path = write_engine_plan(tmp_path, variant=2, days=[5, 5, 10, 10], templates=templates)
    load_plan(path)  # variant 2 skips whoever had the template: reuse is its design
    path.write_text(path.read_text() + "  klaviyo_lead_days: 2\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    (issue,) = caught.value.issues
    assert "'day-01' is used on 3 days but klaviyo_lead_days is 2" in issue.message
    assert issue.line is not None and "day: 3" in path.read_text().splitlines()[issue.line - 1]


def test_exclusion_first_only_from_the_seeds_day(tmp_path: Path, store_path: Path) -> None:
    fill_store(store_path, 200, seed=5)
    path = write_engine_plan(
        tmp_path, variant=2, days=[5, 5, 10, 10], templates=["day-01", "day-02", "day-03", "day-04"]
    )
    run_day(load_plan(path), 1, now=prague("2026-12-01T23:00"))

    def first_in_line(text: str) -> int:
        path.write_text(text)
        funnel = {n.id: n for n in run_day(load_plan(path), 2, dry_run=True).funnel}
        return int(funnel["558"].out.get("yes", 0))

    plain = path.read_text()
    assert first_in_line(plain) == 5  # day 1's five are in the exclusion list: first in line
    assert first_in_line(plain + "  exclusion_first_from_day: 4\n") == 0
    assert first_in_line(plain + "  exclusion_first_from_day: 2\n") == 5
    # explain says why someone in the list is not put first before the seed's day (it said
    # "in the exclusion list going into the day → no", with no reason for the no)
    path.write_text(plain + "  exclusion_first_from_day: 4\n")
    loaded = load_plan(path)
    with closing(open_store(loaded.store_path, create=False)) as store:
        (email,) = store.conn.execute(
            "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.day = 1 AND a.provider = 'new' ORDER BY 1 LIMIT 1"
        ).fetchone()
    run_day(loaded, 2, now=prague("2026-12-02T23:00"))
    steps = "\n".join(explain(loaded, 2, str(email)).lines)
    assert (
        "in the exclusion list going into the day, but it goes first only from day 4 "
        "(schedule.exclusion_first_from_day) → no" in steps
    ), steps


# the day's Klaviyo work against the send time -------------------------------------------------
def test_the_dry_run_warns_when_klaviyo_work_would_end_after_the_send_time(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 3000, seed=2)
    path = write_engine_plan(
        tmp_path, variant=1, days=["all", "all"], templates=["day-01", "day-02"]
    )
    # a small share of the account's limits: the L tier's 700/min becomes 7/min
    path.write_text(
        path.read_text().replace(
            "    base_url: http://127.0.0.1:9\n",
            "    base_url: http://127.0.0.1:9\n    rate_share: 0.01\n",
        )
    )
    loaded = load_plan(path)
    early = run_day(loaded, 1, dry_run=True)
    work = early.to_json()["klaviyo_work"]
    new = early.to_json()["allocation"]["new"]
    readback = {w["endpoint"]: w for w in work["work"]}["get_list_profiles"]
    assert readback["requests"] == -(-new // 100) and readback["tier"] == "L"
    # one page a second, 7 a minute: about (pages - 1) // 7 minutes
    assert work["seconds"] >= 60 * ((readback["requests"] - 1) // 7)
    assert work["before_send"] is True  # from midnight there is time
    assert not any("WARNING" in n for n in work["notes"])
    late = run_day(loaded, 1, dry_run=True, now=prague("2026-12-01T09:58"))
    assert late.klaviyo_work is not None and late.klaviyo_work["before_send"] is False
    warning = [n for n in late.klaviyo_work["notes"] if n.startswith("WARNING")]
    assert warning and "after the send time 2026-12-01 10:00 +01:00" in warning[0]
    assert "note: WARNING: started at 2026-12-01 09:58 +01:00" in late.render()
    # started after the send time the day is late anyway: its mail goes as it is read back
    after = run_day(loaded, 1, dry_run=True, now=prague("2026-12-01T10:05"))
    assert after.klaviyo_work is not None and after.klaviyo_work["before_send"] is True
    assert not any(n.startswith("WARNING") for n in after.klaviyo_work["notes"])


# the key's scopes, before the first call ------------------------------------------------------
# `warmup run` evaluates the day with the engine: on SQLite here, where it runs today.
@pytest.mark.parametrize("store_location", ["sqlite"], indirect=True)
def test_a_run_with_a_key_lacking_write_scopes_stops_before_any_change(
    seeded: tuple[LoadedPlan, KlaviyoClient], sandbox: RunningSandbox
) -> None:
    from typer.testing import CliRunner

    from warmup.cli import app

    loaded, client = seeded
    lists_before = client.get("/api/lists")["data"]
    result = CliRunner().invoke(
        app,
        ["run", str(loaded.path), "--day", "1", "--now", "2026-12-01T09:00"],
        env={KEY_ENV: sandbox.read_only_key},
    )
    assert result.exit_code == 2, result.output
    assert "lacks scopes lists:write profiles:write" in result.output
    assert "POST /api/profile-bulk-import-jobs: 403" in result.output
    assert "events:read" not in result.output  # the read-only key may read events
    assert sandbox.read_only_key not in result.output
    assert client.get("/api/lists")["data"] == lists_before
    assert stored(loaded.store_path) == {}  # not even the engagement pull ran


def test_the_scope_probes_name_each_missing_scope(sandbox: RunningSandbox) -> None:
    from warmup.providers.klaviyo.scopes import missing_scopes, needed

    with fast_client(sandbox.base_url, sandbox.api_key) as full:
        assert missing_scopes(full, needed(engagement=True, subscriptions=True)) == []
    with fast_client(sandbox.base_url, sandbox.read_only_key) as reader:
        missing = missing_scopes(reader, needed(engagement=True, subscriptions=True))
    assert [p.scopes for p, _ in missing] == ["lists:write profiles:write", "subscriptions:write"]
    assert all("missing required scopes" in said for _, said in missing)


# lists (seed 002) -----------------------------------------------------------------------------
def unnamed_lists_plan(tmp: Path, base_url: str, extra: str = "") -> LoadedPlan:
    loaded = write_plan(tmp, base_url, list_mode="subscribe")
    text = "\n".join(
        line
        for line in loaded.path.read_text().splitlines()
        if "exclusion_list:" not in line and "unsubscribe_list:" not in line
    )
    loaded.path.write_text(
        text.replace("    list_mode: subscribe", "    list_mode: subscribe" + extra) + "\n"
    )
    return load_plan(loaded.path)


def test_unnamed_lists_are_made_per_plan_and_subscribe_follows_the_list(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    from tests.dispatch.klaviyo.klaviyo_helpers import plan_day
    from warmup.dispatch.klaviyo import drain_klaviyo

    loaded = unnamed_lists_plan(tmp_path, sandbox.base_url)
    k = loaded.plan.providers.klaviyo
    name = loaded.plan.name
    assert k.exclusion_list.name == f"warmup {name} {{date}}"
    assert k.unsubscribe_list.name == f"warmup {name} unsubscribes"
    assert k.subscribe_opt_in == "follow_list"
    account = sandbox.app.account
    with closing(open_store(tmp_path / "s.db")) as store:
        everyone = add_customers(store, 20)
        plan_day(store, 1, range(1, 11), everyone)
        with fast_client(sandbox.base_url, sandbox.api_key) as client:
            report = drain_klaviyo(loaded, store, 1, client=client)
    made = {record["name"]: lid for lid, record in account.lists.items()}
    list_id = made[f"warmup {name} 2020-01-01"]
    assert report.lists["exclusion"] == list_id
    assert len(account.members[list_id].seq_of) == 10
    # the sandbox refuses consented_at without historical_import (and the reverse): the jobs
    # went through, and the body carries no historical import
    assert subscribe_attributes(loaded)["historical_import"] is False


def subscribe_attributes(loaded: LoadedPlan) -> dict[str, Any]:
    from warmup.providers.klaviyo.request import webhook_request

    request = webhook_request(
        loaded,
        "klaviyo/subscribe-profiles.json.j2",
        [{"email": "a@example.com", "klaviyo_id": None}],
        which="exclusion",
        list_id="L1",
        list_mode="subscribe",
        day=1,
    )
    return dict(request["body"]["data"]["attributes"])


def test_historical_import_is_the_plans_choice(tmp_path: Path, sandbox: RunningSandbox) -> None:
    loaded = unnamed_lists_plan(
        tmp_path, sandbox.base_url, "\n    subscribe_opt_in: historical_import"
    )
    attributes = subscribe_attributes(loaded)
    assert attributes["historical_import"] is True
    marketing = attributes["profiles"]["data"][0]["attributes"]["subscriptions"]["email"]
    assert "consented_at" in marketing["marketing"]


def test_explain_names_the_events_and_the_score(tmp_path: Path, store_path: Path) -> None:
    from warmup.engine.explainer import explain

    fill_store(store_path, 200, seed=3)
    scenario = tmp_path / "engaged.yaml"
    text = (Path(__file__).resolve().parents[3] / "scenarios/variant-1.yaml").read_text()
    scenario.write_text(
        text.replace(
            "    email_valid: true\n",
            "    email_valid: true\n"
            "    engagement: {kinds: [bounced, marked_as_spam], at_most: 0, within_days: 30}\n",
            1,
        )
    )
    loaded = engine_plan(tmp_path, ENGAGEMENT, scenario)
    first, bounced = eligible_ids(loaded)[-2:]
    add_events(
        store_path,
        [
            (first, "clicked", "2026-11-25T08:00:00+00:00"),
            (first, "opened", "2026-11-25T08:00:00+00:00"),
            (bounced, "bounced", "2026-11-25T08:00:00+00:00"),
        ],
    )
    run_day(loaded, 1, now=prague("2026-12-01T23:00"))
    top = explain(loaded, 1, f"user{first}@example.com").render()
    assert "0 bounced/marked_as_spam events in 30 days → yes" in top, top
    assert "rank 1 (engagement score 3 (1 clicked, 1 opened in 30 days)) ≤ limit 5" in top, top
    held = explain(loaded, 1, f"user{bounced}@example.com").render()
    assert "1 bounced/marked_as_spam events in 30 days → no" in held, held


def test_weights_follow_what_the_plan_pulls(tmp_path: Path) -> None:
    loaded = engine_plan(tmp_path, "engagement: {source: klaviyo, pull: [opened, clicked]}\n")
    assert loaded.plan.engagement.weights == {"opened": 1.0, "clicked": 2.0}
    path = loaded.path
    path.write_text(
        path.read_text().replace(
            "pull: [opened, clicked]}", "pull: [opened], weights: {bounced: -5}}"
        )
    )
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    (issue,) = caught.value.issues
    assert issue.line == len(path.read_text().splitlines())
    assert "weights count bounced but `pull` does not fetch it" in issue.message
