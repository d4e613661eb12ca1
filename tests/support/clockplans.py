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
    path = write_plan(folder, variant=1)
    text = path.read_text(encoding="utf-8")
    text = text.replace("timezone: Europe/Prague", f"timezone: {timezone}")
    text = text.replace("start_date: 2026-12-01", f"start_date: {start}")
    setting = f"  clock_change: {clock_change}\n" if clock_change else ""
    text = text.replace('  send_time: "10:00"\n', f'  send_time: "{send_time}"\n{setting}')
    for day, hhmm in (day_send_times or {}).items():
        text = text.replace(
            f"template: day-{day:02d}}}", f'template: day-{day:02d}, send_time: "{hhmm}"}}'
        )
    path.write_text(text, encoding="utf-8")
    return path
