"""The exclusion list's ownership window: when a day begins (nothing of it may reach Klaviyo's
lists before), and which days still own the single exclusion list (a day's members stay until
its end in the plan's timezone plus ``exclusion_margin_hours``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from warmup.plan import LoadedPlan
from warmup.plan.calendar import date_of_day
from warmup.store import Store, days


def list_date(loaded: LoadedPlan, store: Store, day: int) -> str:
    """The date day ``day`` ran on, else the date the plan's calendar gives it after the days
    that have run (each anchored on its date, or the date it completed when that was later,
    as the engine dates a day)."""
    return date_of_day(loaded.plan, day, days.states(store.backend)).isoformat()


def day_bounds(loaded: LoadedPlan, store: Store, day: int) -> tuple[datetime, datetime]:
    """When day ``day`` begins and when its exclusions may go (its end in the plan's timezone
    plus ``exclusion_margin_hours``), in UTC."""
    zone = ZoneInfo(loaded.plan.timezone)
    start = datetime.combine(date.fromisoformat(list_date(loaded, store, day)), dt_time(), zone)
    margin = timedelta(hours=loaded.plan.providers.klaviyo.exclusion_margin_hours)
    return start.astimezone(UTC), (start + timedelta(days=1) + margin).astimezone(UTC)


def not_begun(loaded: LoadedPlan, store: Store, day: int, now: datetime | None) -> datetime | None:
    """When day ``day`` begins, if it has not begun yet at ``now`` (default: the clock)."""
    begins = day_bounds(loaded, store, day)[0]
    return begins if (now or datetime.now(UTC)) < begins else None


def owning_days(loaded: LoadedPlan, store: Store, day: int, now: datetime) -> list[int]:
    """The latest day run so far (``day`` or a later one) and every earlier day not yet over
    (end + margin): their exclusions stay. Measured from the latest day, not from ``day``, so that
    re-running an earlier, completed day never strips a later day's recipients from the list."""
    ran = days.states(store.backend)
    latest = max(day, days.latest_day(store.backend) or 0)
    earlier = [d for d in ran if d < latest]
    return [latest, *(d for d in earlier if day_bounds(loaded, store, d)[1] > now)]
