"""What a day's run and dry run show of Klaviyo beyond the list changes (issue 17):

- the ranking's engagement: the plan's definition and what has been pulled;
- the day's Klaviyo work at the account's rate tiers (seed 000's "sync time before sending"):
  list changes, read-back and pulls, and a warning when it would not finish before the send
  time;
- the account limit seed 004 names (fewer than 850,000 profiles).

Everything is read from the store and the plan; nothing here calls Klaviyo.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from warmup.clock import show
from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.errors import InvalidInput
from warmup.plan.calendar import local_time
from warmup.providers.klaviyo.events_api import EVENTS_PAGE
from warmup.providers.klaviyo.worktime import Work, calls
from warmup.store import consents, customers, engagement

# Seed 004, "Limitations": Klaviyo accounts with fewer than 850,000 profiles.
PROFILE_LIMIT = 850_000
READBACK_PAGE = 100
JOB_POLLS = 2  # polls of a bulk import job before it is complete: a typical figure, not a floor


def engagement_note(ctx: DayContext) -> str | None:
    settings = ctx.plan.engagement
    if settings.source != "klaviyo":
        return None
    weights = ", ".join(f"{k} ×{w:g}" for k, w in settings.weights.items() if w)
    stored = engagement.totals(ctx.conn)
    head = (
        f"ranking: most engaged first by Klaviyo's events ({weights or 'no weights'}) in the "
        f"{settings.window_days} days before the day"
    )
    if not stored.last_pull:
        return head + "; nothing pulled yet (a run pulls first; `warmup sync PLAN --pull` now)"
    last = show(stored.last_pull, ctx.plan.timezone)
    return (
        f"{head}; {stored.events:,} events of {stored.customers:,} customers stored, "
        f"last pull {last}"
    )


def consent_note(ctx: DayContext) -> str | None:
    """The consent categories the plan maps to Klaviyo lists, as the store holds them."""
    lists = ctx.plan.providers.klaviyo.consent_lists
    if not lists:
        return None
    parts = []
    for category, ref in lists.items():
        counts = consents.category_counts(ctx.conn, category)
        held = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items())) or "none yet"
        parts.append(f"{category} (list {ref.id or repr(ref.name)}): {held}")
    return "consent categories from Klaviyo lists (read before the day): " + "; ".join(parts)


def day_work(ctx: DayContext, figures: sql.NewSetFigures, changes: dict[str, Any]) -> list[Work]:
    """The Klaviyo requests the day makes, by endpoint (a floor: no retries, no 429)."""
    k = ctx.plan.providers.klaviyo
    added, confirmed, today = figures.added, figures.confirmed, figures.today
    work: list[Work] = [Work("pull unsubscribes and suppressions", "get_profiles", 1)]
    if ctx.plan.engagement.source == "klaviyo":
        work.append(Work("find the engagement metrics", "get_metrics", 1))
        since = (ctx.start - timedelta(days=1)).isoformat()
        recent = engagement.count_since(ctx.conn, since)
        pages = max(len(ctx.plan.engagement.pull), -(-int(recent) // EVENTS_PAGE))
        work.append(
            Work("pull engagement events (a day's worth as last seen)", "get_events", pages)
        )
    for category in k.consent_lists:
        # the whole list is read each time; its members as last seen give the pages
        members = consents.category_counts(ctx.conn, category).get(consents.SUBSCRIBED, 0)
        pages = max(1, -(-members // READBACK_PAGE))
        work.append(Work(f"read consent list {category}", "get_list_profiles", pages))
    if k.list_mode == "subscribe":
        work.append(
            Work("subscribe into the exclusion list", "subscribe", calls(added, "subscribe"))
        )
    else:
        work.append(
            Work(
                "add known profiles to the exclusion list",
                "add_to_list",
                calls(confirmed, "add_to_list"),
            )
        )
        jobs = calls(added - confirmed, "bulk_import")
        work.append(Work("import the others into the exclusion list", "bulk_import", jobs))
        work.append(Work("poll the import jobs", "get_import_job", jobs * JOB_POLLS))
    work.append(
        Work(
            "remove earlier days' members",
            "remove_from_list",
            calls(int(changes["removed"]), "remove_from_list"),
        )
    )
    work.append(
        Work("read the exclusion list back", "get_list_profiles", -(-today // READBACK_PAGE))
    )
    return [w for w in work if w.requests]


def work_summary(ctx: DayContext, work: list[Work]) -> tuple[dict[str, Any], list[str]]:
    """The JSON of the estimate and its notes (a warning when it ends after the send time)."""
    share = ctx.plan.providers.klaviyo.rate_share
    seconds = sum(w.seconds(share) for w in work)
    requests = sum(w.requests for w in work)
    begin: datetime = ctx.now if ctx.now is not None and ctx.now > ctx.start else ctx.start
    try:
        send = local_time(ctx.plan, ctx.date, ctx.plan.schedule.send_time_for(ctx.day))
    except InvalidInput:
        send = None  # a clock-change send time: validate and the run say so already
    ends = begin + timedelta(seconds=seconds)
    # a run that starts at or after the send time is late already (its own note says so): the
    # mail goes as its people are read back
    in_time = send is None or ends <= send or begin >= send
    summary: dict[str, Any] = {
        "requests": requests,
        "seconds": round(seconds, 1),
        "from": begin.isoformat(),
        "ends": ends.isoformat(),
        "send_at": send.isoformat() if send else None,
        "before_send": in_time,
        "work": [w.to_json(share) for w in work],
    }
    parts = ", ".join(f"{w.what} {w.requests:,}" for w in work)
    tz = ctx.plan.timezone
    notes = [
        f"Klaviyo work for the day: {requests:,} requests, about {_duration(seconds)} at the "
        f"account's rate tiers ({parts})"
    ]
    if not in_time and send is not None:
        notes.append(
            f"WARNING: started at {show(begin, tz)} the Klaviyo work ends at {show(ends, tz)}, "
            f"after the send time {show(send, tz)}: the mail waits for the read-back — run the "
            "day earlier, move the send time, or lower the day's volume"
        )
    return summary, notes


def limit_notes(ctx: DayContext) -> list[str]:
    held = customers.count(ctx.conn)
    if held < PROFILE_LIMIT:
        return []
    return [
        f"WARNING: the store holds {held:,} customers; seed 004's Klaviyo integration "
        f"takes accounts with fewer than {PROFILE_LIMIT:,} profiles — check the account's limits"
    ]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def klaviyo_day(
    ctx: DayContext, figures: sql.NewSetFigures, changes: dict[str, Any]
) -> dict[str, Any]:
    """The day's ``klaviyo_work``: the estimate, and the lines to show under ``notes``
    (the engagement ranking, the estimate, a warning past the send time or the limits)."""
    summary, notes = work_summary(ctx, day_work(ctx, figures, changes))
    said = [note for note in (engagement_note(ctx), consent_note(ctx)) if note]
    summary["notes"] = said + notes + limit_notes(ctx)
    return summary
