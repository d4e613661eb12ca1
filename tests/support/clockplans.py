"""Plans in any zone, starting on any date, for the daylight-saving tests."""

from __future__ import annotations

from pathlib import Path

from tests.support.storefill import write_plan


def zoned_plan(
    folder: Path,
    *,
    timezone: str,
    start: str,
    send_time: str = "10:00",
    clock_change: str | None = None,
    day_send_times: dict[int, str] | None = None,
) -> Path:
    """``write_plan``'s 14-day variant-1 plan moved to ``timezone`` and ``start``."""
    setting = f"  clock_change: {clock_change}\n" if clock_change else ""
    edits = {
        "timezone: Europe/Prague": f"timezone: {timezone}",
        "start_date: 2026-12-01": f"start_date: {start}",
        '  send_time: "10:00"\n': f'  send_time: "{send_time}"\n{setting}',
    }
    for day, hhmm in (day_send_times or {}).items():
        edits[f"template: day-{day:02d}}}"] = f'template: day-{day:02d}, send_time: "{hhmm}"}}'
    return write_plan(folder, variant=1, edits=edits)
