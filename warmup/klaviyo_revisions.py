"""Klaviyo's API revisions: the release table and its lifetimes, shared by the plan checks
(``warmup validate``) and the sandbox, which answers a revision the way Klaviyo does.

Klaviyo's versioning policy (developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy):
a revision is a release date; a date that is not itself a release is served by the latest release
on or before it; a release is stable for one year, deprecated for a second and retired two years
after its date.

Plain data and date arithmetic, importing nothing of warmup: a leaf below plan/, providers/ and
sandbox/, which all read it (the sandbox may import nothing above itself).
"""

from __future__ import annotations

import re
from datetime import date

# The current GA revision: klaviyo-api 25.0.0 sends it (wrapper.py ``_REVISION``).
STABLE_REVISION = "2026-10-15"
# Klaviyo's GA releases since date-versioned APIs went GA; newer ones land quarterly on the 15th.
RELEASES: tuple[str, ...] = (
    "2022-10-17",
    "2023-01-24",
    "2023-02-22",
    "2023-06-15",
    "2023-07-15",
    "2023-08-15",
    "2023-09-15",
    "2023-10-15",
    "2023-12-15",
    "2024-02-15",
    "2024-05-15",
    "2024-06-15",
    "2024-07-15",
    "2024-10-15",
    "2025-01-15",
    "2025-04-15",
    "2025-07-15",
    "2025-10-15",
    "2026-01-15",
    "2026-04-15",
    "2026-07-15",
    "2026-10-15",
)
LIFETIME_YEARS = 2
FORMAT = "YYYY-MM-DD[.suffix]"
PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")


def retires_on(release: str) -> date:
    released = date.fromisoformat(release)
    return released.replace(year=released.year + LIFETIME_YEARS)


def resolve(header: str) -> str | None:
    """The release serving ``header`` (the latest on or before its date), or None."""
    found = PATTERN.match(header)
    if found is None:
        return None
    day = found.group(1)
    candidates = [r for r in RELEASES if r <= day]
    return candidates[-1] if candidates else None


def oldest_alive(today: date) -> str:
    return next(r for r in RELEASES if retires_on(r) > today)


def unusable(revision: str, today: date) -> str | None:
    """Why Klaviyo would refuse ``revision`` on ``today`` (future, unreleased or retired), or
    None. A well-formed date after the newest release in the table but not in the future is
    accepted: it may be a release made since this table was written."""
    found = PATTERN.match(revision)
    if found is None:
        return f"{revision!r} is not a Klaviyo revision (format: {FORMAT})"
    try:
        day = date.fromisoformat(found.group(1))
    except ValueError:
        return f"{revision!r} is not a date"
    release = resolve(revision)
    supported = f"a supported revision from {oldest_alive(today)} to {STABLE_REVISION}"
    if day > today:
        return f"revision {revision} is in the future; Klaviyo serves only {supported}"
    if release is None:
        return f"revision {revision} is older than Klaviyo's first release {RELEASES[0]}"
    if retires_on(release) <= today:
        return (
            f"revision {revision} was retired on {retires_on(release).isoformat()}; "
            f"Klaviyo serves only {supported}"
        )
    return None
