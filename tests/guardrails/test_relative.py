"""Guardrails relative to Klaviyo (issue 17): the ramp holds when the new provider's bounce
rate rises more than N points above Klaviyo's for the same engagement tier, although its own
absolute figures are still below `min_sample`; the decision's reasons name the tier and both
rates in the dry run and `warmup status`. The plan refuses relative lines it cannot judge, at
their line. The store is filled through its own operations, as in tests/cli/test_comparison."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pendulum
import pytest
from typer.testing import CliRunner

from tests.support.storefill import fill_store, write_plan
from warmup.cli import app
from warmup.engine import run_day
from warmup.engine.explainer import explain
from warmup.guardrails import evaluate_guardrails
from warmup.plan import LoadedPlan, load_plan
from warmup.report.status import plan_status
from warmup.store import engagement, events, now_iso, open_store
from warmup.store.engagement import StoredEvent
from warmup.store.outbox import Outbox

BEFORE = "2026-11-20T10:00:00+00:00"  # in the 30 days before day 1 (2026-12-01, Prague)
DAY_1 = "2026-12-01T12:00:00+00:00"  # between day 1's and day 2's midnight
runner = CliRunner()


def write(folder: Path, extra: str) -> Path:
    path = write_plan(folder, days=[10, 20], store=folder / "c.db")
    path.write_text(
        path.read_text() + "engagement: {source: klaviyo, window_days: 30}\n" + extra,
        encoding="utf-8",
    )
    return path


def kept(loaded: LoadedPlan, kind: str, people: list[tuple[int, str]], at: str) -> None:
    """Klaviyo events as the pull stores them (one page of ``kind``)."""
    with closing(open_store(loaded.store_path, create=False)) as store:
        page = [StoredEvent(f"{kind}-{cid}-{at}", email, at) for cid, email in people]
        with store.transaction() as conn:
            engagement.store_page(conn, kind, f"M-{kind}", at, page, pulled_at=now_iso())


def day_1(loaded: LoadedPlan) -> None:
    """Day 1: 10 new-provider customers (5 engaged, 5 without history), 2 of the latter
    hard-bounced (40%); Klaviyo's 20: 10 engaged and 10 without history, all received, none
    bounced."""
    fill_store(loaded.store_path, 60, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        conn = store.conn
        sides = {
            provider: [
                (int(c), str(e))
                for c, e in conn.execute(
                    "SELECT a.customer_id, c.email FROM allocations a JOIN customers c "
                    "ON c.id = a.customer_id WHERE a.day = 1 AND a.provider = ? ORDER BY 1",
                    (provider,),
                )
            ]
            for provider in ("new", "klaviyo")
        }
        emails = dict(
            conn.execute("SELECT customer_id, id FROM outbox WHERE kind = 'email' AND day = 1")
        )
    new, klaviyo = sides["new"], sides["klaviyo"][:20]
    kept(loaded, "opened", new[:5] + klaviyo[:10], BEFORE)
    with closing(open_store(loaded.store_path, create=False)) as store:
        Outbox(store).sent_email_batch([emails[c] for c, _ in new], now_iso())
        with store.transaction() as conn:
            for i, (cid, email) in enumerate(new):
                kind = "hard_bounced" if i >= 8 else "delivered"
                events.insert(
                    conn, events.Event("ses", f"e{cid}", kind, cid, email, 1, DAY_1, DAY_1)
                )
    kept(loaded, "received", klaviyo, DAY_1)


RELATIVE = "guardrails:\n  relative: {{min_sample: 5, hold: {{bounce_rate_above_by: {by}}}}}\n"


def test_holds_when_the_new_provider_bounces_more_than_klaviyo_for_the_same_tier(
    tmp_path: Path,
) -> None:
    loaded = load_plan(write(tmp_path, RELATIVE.format(by=0.1)))
    day_1(loaded)
    with closing(open_store(loaded.store_path, create=False)) as store:
        decision = evaluate_guardrails(loaded, store, 2)
    assert decision.action == "hold" and decision.volume_day == 1
    why = (
        "day 1: against Klaviyo, no_history: new provider's bounce rate 40.0% (2 of 5) "
        "against Klaviyo's 0.0% (0 of 10): 40 points above, over the relative line of 10 points"
    )
    assert decision.reasons == [why]
    # the dry run and status say it
    preview = run_day(
        loaded, 2, now=pendulum.datetime(2026, 12, 2, 1, tz="Europe/Prague"), dry_run=True
    )
    assert any(why in note for note in preview.notes)
    status = plan_status(loaded).to_json()["guardrail"]
    assert status["action"] == "hold" and why in status["reasons"]
    # the day runs at day 1's volume, and explain says why the limit is that
    ran = run_day(loaded, 2, now=pendulum.datetime(2026, 12, 2, 1, tz="Europe/Prague"))
    assert any(why in note for note in ran.notes)
    with closing(open_store(loaded.store_path, create=False)) as store:
        first = store.conn.execute(
            "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.day = 2 AND a.provider = 'new' ORDER BY a.customer_id LIMIT 1"
        ).fetchone()[0]
        limit = store.conn.execute("SELECT new_limit FROM days WHERE day = 2").fetchone()[0]
    assert limit == 10
    steps = "\n".join(explain(loaded, 2, first).lines)
    assert "limit 10 (day 1's volume: the guardrails held the ramp) → new provider" in steps


def test_within_the_relative_line_the_ramp_goes_on_and_says_what_it_compared(
    tmp_path: Path,
) -> None:
    loaded = load_plan(write(tmp_path, RELATIVE.format(by=0.5)))
    day_1(loaded)
    with closing(open_store(loaded.store_path, create=False)) as store:
        decision = evaluate_guardrails(loaded, store, 2)
    assert decision.action == "proceed" and decision.volume_day == 2
    assert decision.reasons[1:] == [
        "day 1: against Klaviyo, engaged: within the relative lines (5 and 10 mailed)",
        "day 1: against Klaviyo, unengaged: 0 mailed by the new provider, 0 by Klaviyo, below "
        "min_sample 5 a side: not compared yet",
        "day 1: against Klaviyo, no_history: within the relative lines (5 and 10 mailed)",
    ]
    preview = run_day(
        loaded, 2, now=pendulum.datetime(2026, 12, 2, 1, tz="Europe/Prague"), dry_run=True
    )
    assert any("day 2: guardrails ok" in n and "no_history: within" in n for n in preview.notes)


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        (
            "guardrails:\n  relative:\n    hold: {open_rate_below_by: 0.05}\n",
            "open_rate_below_by",
            "the new provider reports no opens or clicks to warmup",
        ),
        (
            "guardrails:\n  relative:\n    hold: {}\n",
            "hold",
            "guardrails.relative sets no hold line",
        ),
        # no tier: the lines would judge nothing
        (
            "guardrails:\n  relative:\n    tiers: []\n    hold: {bounce_rate_above_by: 0.01}\n",
            "tiers",
            "at least 1 item",
        ),
        (
            "guardrails:\n  relative:\n    hold: {complaint_rate_above_by: 0.001}\n  # end\n",
            "complaint_rate_above_by",
            "needs Klaviyo's marked_as_spam events",
        ),
    ],
)
def test_lines_it_cannot_judge_are_refused_at_their_line(
    tmp_path: Path, extra: str, key: str, message: str
) -> None:
    path = write(tmp_path, extra)
    text = path.read_text()
    if "complaint" in extra:
        text = text.replace("window_days: 30}", "window_days: 30, pull: [received, opened]}")
        path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if f"{key}:" in row)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path.name}:{line}" in result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_relative_lines_need_klaviyos_engagement(tmp_path: Path) -> None:
    path = write(tmp_path, RELATIVE.format(by=0.1))
    path.write_text(path.read_text().replace("source: klaviyo", "source: export"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "does not pull Klaviyo's engagement" in result.output
    assert "add `engagement: {source: klaviyo}`" in result.output


def test_validate_lists_the_relative_and_group_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "guardrails:\n  groups: {gmail: {hold: {hard_bounce_rate: 0.2}}}\n"
        "  relative: {hold: {bounce_rate_above_by: 0.01, delivered_rate_below_by: 0.05}}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "guardrail  gmail: hard_bounce_rate 0.2" in result.output
    assert (
        "against Klaviyo per tier (engaged, unengaged, no_history; min_sample 100" in result.output
    )
    assert "hold on delivered more than 5 points below; bounces more than 1 point above" in (
        result.output
    )
    assert "opens and clicks not compared" in result.output


def smtp_day_1(loaded: LoadedPlan) -> None:
    """Day 1 through an SMTP relay: the new provider's 10 accepted with 250 and no event
    about them (a relay reports no `delivered`); Klaviyo's 20 received, as in ``day_1``."""
    fill_store(loaded.store_path, 60, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        klaviyo = [
            (int(c), str(e))
            for c, e in store.conn.execute(
                "SELECT a.customer_id, c.email FROM allocations a JOIN customers c "
                "ON c.id = a.customer_id WHERE a.day = 1 AND a.provider = 'klaviyo' "
                "ORDER BY 1 LIMIT 20"
            )
        ]
        rows = [
            int(r)
            for (r,) in store.conn.execute("SELECT id FROM outbox WHERE kind = 'email' AND day = 1")
        ]
        Outbox(store).sent_email_batch(rows, now_iso())
    kept(loaded, "received", klaviyo, DAY_1)


def test_mail_an_smtp_relay_accepted_counts_as_delivered_against_klaviyo(
    tmp_path: Path,
) -> None:
    """An SMTP relay never reports `delivered`: its accepted mail is delivered unless it
    bounced, as the day's own guardrails count it, so the delivered line does not hold a
    healthy ramp (it held every day at 0% against Klaviyo's 100%)."""
    loaded = load_plan(
        write(
            tmp_path,
            "guardrails:\n  relative: {min_sample: 5, hold: {delivered_rate_below_by: 0.05}}\n",
        )
    )
    smtp_day_1(loaded)
    with closing(open_store(loaded.store_path, create=False)) as store:
        decision = evaluate_guardrails(loaded, store, 2)
    assert decision.action == "proceed", decision.reasons
    rows = {(r["tier"], r["provider"]): r for r in plan_status(loaded).to_json()["comparison"]}
    new = rows[("no_history", "new")]
    assert (new["mailed"], new["delivered"], new["rates"]["delivered"]) == (10, 10, 1.0)


def test_a_hold_never_raises_a_day_above_its_own_schedule(tmp_path: Path) -> None:
    """Held at day 1's volume (10), day 2 whose own schedule is lower (4) mails 4: a guardrail
    that holds the ramp must not send more than the plan asked for (it sent 10)."""
    path = write_plan(tmp_path, days=[10, 4], store=tmp_path / "c.db")
    path.write_text(
        path.read_text()
        + "engagement: {source: klaviyo, window_days: 30}\n"
        + RELATIVE.format(by=0.1),
        encoding="utf-8",
    )
    loaded = load_plan(path)
    day_1(loaded)
    with closing(open_store(loaded.store_path, create=False)) as store:
        assert evaluate_guardrails(loaded, store, 2).action == "hold"
    run_day(loaded, 2, now=pendulum.datetime(2026, 12, 2, 1, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        limit = store.conn.execute("SELECT new_limit FROM days WHERE day = 2").fetchone()[0]
        new = store.conn.execute(
            "SELECT count(*) FROM allocations WHERE day = 2 AND provider = 'new'"
        ).fetchone()[0]
    assert (limit, new) == (4, 4)
    with closing(open_store(loaded.store_path, create=False)) as store:
        (first,) = store.conn.execute(
            "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.day = 2 AND a.provider = 'new' ORDER BY a.customer_id LIMIT 1"
        ).fetchone()
    steps = "\n".join(explain(loaded, 2, str(first)).lines)
    assert (
        "limit 4 (the day's own schedule: the guardrails hold the ramp at day 1's volume, "
        "which is more) → new provider" in steps
    ), steps
