"""The new provider against Klaviyo for comparable people (issue 17): per engagement tier and
provider, the day's mail and what each side reported, in `warmup status --json` and the HTML
report. The store is filled through its own operations: a real day run (allocations, outbox),
the email writer's `sent`, the events aggregate, and the engagement pull's page store."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pendulum

from tests.support.plans import REPO
from tests.support.storefill import fill_store, write_plan
from warmup.engine import run_day
from warmup.plan import LoadedPlan, load_plan
from warmup.report.comparison import comparison
from warmup.report.html import render_report
from warmup.report.status import plan_status
from warmup.store import engagement, events, now_iso, open_store
from warmup.store.engagement import StoredEvent
from warmup.store.outbox import HardBounce, Outbox

BEFORE = "2026-11-20T10:00:00+00:00"  # in the 30 days before day 1 (2026-12-01, Prague)
DAY_1 = "2026-12-01T12:00:00+00:00"  # between day 1's and day 2's midnight


def plan(folder: Path, source: str = "klaviyo") -> LoadedPlan:
    path = write_plan(folder, days=[10, 20], store=folder / "c.db")
    path.write_text(
        path.read_text() + f"engagement: {{source: {source}, window_days: 30}}\n",
        encoding="utf-8",
    )
    return load_plan(path)


def kept(loaded: LoadedPlan, kind: str, people: list[tuple[int, str]], at: str) -> None:
    """Klaviyo events as the pull stores them (one page of ``kind``)."""
    with closing(open_store(loaded.store_path, create=False)) as store:
        page = [StoredEvent(f"{kind}-{cid}-{at}", email, at) for cid, email in people]
        with store.transaction() as conn:
            engagement.store_page(conn, kind, f"M-{kind}", at, page, pulled_at=now_iso())


def test_rates_per_provider_and_tier(tmp_path: Path) -> None:
    loaded = plan(tmp_path)
    fill_store(loaded.store_path, 60, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        conn = store.conn
        allocated = {
            str(p): [(int(c), str(e)) for c, e in rows]
            for p, rows in {
                provider: conn.execute(
                    "SELECT a.customer_id, c.email FROM allocations a JOIN customers c "
                    "ON c.id = a.customer_id WHERE a.day = 1 AND a.provider = ? ORDER BY 1",
                    (provider,),
                ).fetchall()
                for provider in ("new", "klaviyo")
            }.items()
        }
        emails = dict(
            conn.execute("SELECT customer_id, id FROM outbox WHERE kind = 'email' AND day = 1")
        )
    new, klaviyo = allocated["new"], allocated["klaviyo"]
    assert len(new) == 10 and len(klaviyo) >= 20
    # tiers before day 1: the first half of each side engaged, the rest no history
    kept(loaded, "opened", new[:5] + klaviyo[:10], BEFORE)
    # the new provider: all 10 mailed, 8 delivered, 1 hard bounce, 1 complaint
    with closing(open_store(loaded.store_path, create=False)) as store:
        Outbox(store).sent_email_batch([emails[c] for c, _ in new], now_iso())
        with store.transaction() as conn:
            for i, (cid, email) in enumerate(new):
                kind = "delivered" if i < 8 else "hard_bounced"
                events.insert(
                    conn,
                    events.Event("ses", f"e{cid}", kind, cid, email, 1, DAY_1, DAY_1),
                )
            cid, email = new[0]
            events.insert(
                conn, events.Event("ses", f"c{cid}", "complained", cid, email, 1, DAY_1, DAY_1)
            )
    # Klaviyo: 20 received on day 1, 6 opened (4 engaged, 2 not), 2 clicked, 1 spam
    kept(loaded, "received", klaviyo[:20], DAY_1)
    kept(loaded, "opened", klaviyo[:4] + klaviyo[10:12], DAY_1)
    kept(loaded, "clicked", klaviyo[:2], DAY_1)
    kept(loaded, "marked_as_spam", klaviyo[12:13], DAY_1)

    rows = {(r["tier"], r["provider"]): r for r in plan_status(loaded).to_json()["comparison"]}
    engaged_new = rows[("engaged", "new")]
    assert (engaged_new["mailed"], engaged_new["delivered"], engaged_new["complained"]) == (5, 5, 1)
    assert engaged_new["opened"] is None and engaged_new["rates"]["opened"] is None
    assert engaged_new["rates"]["complained"] == 0.2
    quiet_new = rows[("no_history", "new")]
    assert (quiet_new["mailed"], quiet_new["delivered"], quiet_new["bounced"]) == (5, 3, 2)
    assert quiet_new["rates"]["bounced"] == 0.4
    engaged_k = rows[("engaged", "klaviyo")]
    assert engaged_k["customer_days"] == 10
    assert (engaged_k["mailed"], engaged_k["opened"], engaged_k["clicked"]) == (10, 4, 2)
    assert engaged_k["rates"]["opened"] == 0.4 and engaged_k["complained"] == 0
    quiet_k = rows[("no_history", "klaviyo")]
    assert (quiet_k["mailed"], quiet_k["opened"], quiet_k["complained"]) == (10, 2, 1)
    assert quiet_k["customer_days"] == len(klaviyo) - 10  # the unmailed ones count as days
    html = render_report(loaded, now=pendulum.datetime(2026, 12, 2, tz="UTC"))
    assert "New provider against Klaviyo, by engagement tier" in html
    assert "40.0%" in html


def test_no_comparison_without_pulled_engagement(tmp_path: Path) -> None:
    loaded = plan(tmp_path, source="export")
    fill_store(loaded.store_path, 20, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    assert "comparison" not in plan_status(loaded).to_json()
    with closing(open_store(loaded.store_path, create=False)) as store:
        assert comparison(loaded, store.conn) == []


def test_klaviyos_bounced_mail_counts_as_mailed_and_the_relays_accepted_as_delivered(
    tmp_path: Path,
) -> None:
    """Klaviyo records Received Email for delivered mail only, so a bounced one is mailed
    but not received (its bounce rate was bounces over deliveries, its delivered rate always
    100%); an SMTP relay reports no `delivered` event: its mail handed over is delivered
    unless it bounced (as the day's guardrails count it)."""
    loaded = plan(tmp_path)
    fill_store(loaded.store_path, 60, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        conn = store.conn
        klaviyo = [
            (int(c), str(e))
            for c, e in conn.execute(
                "SELECT a.customer_id, c.email FROM allocations a JOIN customers c "
                "ON c.id = a.customer_id WHERE a.day = 1 AND a.provider = 'klaviyo' "
                "ORDER BY 1 LIMIT 10"
            )
        ]
        emails = [
            (int(i), int(c), str(e))
            for i, c, e in conn.execute(
                "SELECT o.id, o.customer_id, c.email FROM outbox o JOIN customers c "
                "ON c.id = o.customer_id WHERE o.kind = 'email' AND o.day = 1 ORDER BY 1"
            )
        ]
        outbox = Outbox(store)
        outbox.sent_email_batch([i for i, _, _ in emails[:-1]], now_iso())
        # the relay refused the last one for good: the SMTP writer's bounce
        outbox.finish_email(
            emails[-1][0],
            "bounced",
            now_iso(),
            "550 5.1.1 no such user",
            bounce=HardBounce("smtp-1", emails[-1][1], emails[-1][2], 1, "550"),
        )
    # Klaviyo: 8 received, 2 bounced (no Received Email for those)
    kept(loaded, "received", klaviyo[:8], DAY_1)
    kept(loaded, "bounced", klaviyo[8:], DAY_1)
    rows = {(r["tier"], r["provider"]): r for r in plan_status(loaded).to_json()["comparison"]}
    new, them = rows[("no_history", "new")], rows[("no_history", "klaviyo")]
    assert (new["mailed"], new["delivered"], new["bounced"]) == (10, 9, 1)
    assert (them["mailed"], them["delivered"], them["bounced"]) == (10, 8, 2)
    assert them["rates"]["bounced"] == 0.2 and them["rates"]["delivered"] == 0.8


def test_a_splits_control_arm_is_klaviyos_side(tmp_path: Path) -> None:
    """The control arm of a `split` (its `no` edge: the path ends, Klaviyo mails them) reaches
    no allocation; it is Klaviyo's side of the comparison all the same (it was left out, so
    Klaviyo's side was only the new provider's overflow, the treatment arm's least engaged)."""
    text = (REPO / "scenarios" / "variant-1.yaml").read_text()
    old = "    segment: engaged-90\n    yes: 40\n"
    assert old in text
    scenario = tmp_path / "split.yaml"
    scenario.write_text(
        text.replace(
            old,
            "    segment: engaged-90\n    yes: s\n\n  - id: s\n    type: split\n"
            "    share: 0.5\n    yes: 40\n",
        )
    )
    path = write_plan(tmp_path, days=["all", "all"], store=tmp_path / "c.db", scenario=scenario)
    path.write_text(path.read_text() + "engagement: {source: klaviyo, window_days: 30}\n")
    loaded = load_plan(path)
    fill_store(loaded.store_path, 40, statuses=("subscribed",))
    run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 11, tz="Europe/Prague"))
    with closing(open_store(loaded.store_path, create=False)) as store:
        control = [
            (int(c), str(e))
            for c, e in store.conn.execute(
                "SELECT j.customer_id, c.email FROM journey_rows j JOIN customers c "
                "ON c.id = j.customer_id WHERE j.day = 1 AND j.node = 's' "
                "AND j.outcome = 'ended' ORDER BY 1"
            )
        ]
        allocated = dict(
            store.conn.execute("SELECT provider, count(*) FROM allocations GROUP BY 1")
        )
    assert "klaviyo" not in allocated and 10 <= len(control) <= 30
    # Klaviyo mailed its control arm that day: all received, one bounced
    kept(loaded, "received", control[1:], DAY_1)
    kept(loaded, "bounced", control[:1], DAY_1)
    rows = {(r["tier"], r["provider"]): r for r in plan_status(loaded).to_json()["comparison"]}
    them = rows[("no_history", "klaviyo")]
    assert (them["customer_days"], them["mailed"], them["bounced"]) == (
        len(control),
        len(control),
        1,
    )
