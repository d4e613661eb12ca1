"""Klaviyo's ``revision`` header as Klaviyo treats it.

Klaviyo's versioning policy (developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy):
a revision is a release date; a date that is not itself a release is served by the latest release
on or before it; a release is stable for one year, deprecated for a second and retired two years
after its date. The sandbox knows one set of shapes, those of ``SHAPES_REVISION`` (the OpenAPI
documents it ships), and serves them to every revision that is still alive up to
``STABLE_REVISION``, the newest general-availability release (the one the official SDKs send).

Choices where Klaviyo's answer is unconfirmed, documented in the README: a retired revision is
answered 410 ``gone`` (Klaviyo's answer to the retired v1/v2 APIs); a date in the future or
before the first release is 404 "No valid revisions found for method." (observed for a revision
in which the route does not exist); ``.pre`` betas are served as their date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

# The shipped OpenAPI documents (klaviyo/openapi, commit f0a30ba) describe this revision.
SHAPES_REVISION = "2026-07-15"
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
_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")


@dataclass(frozen=True)
class Refusal:
    """Why a revision header is refused: the HTTP status, Klaviyo's code and title, a detail."""

    status: int
    code: str
    title: str
    detail: str


def retires_on(release: str) -> date:
    released = date.fromisoformat(release)
    return released.replace(year=released.year + LIFETIME_YEARS)


def resolve(header: str) -> str | None:
    """The release serving ``header`` (the latest on or before its date), or None."""
    found = _REVISION.match(header)
    if found is None:
        return None
    day = found.group(1)
    candidates = [r for r in RELEASES if r <= day]
    return candidates[-1] if candidates else None


def oldest_alive(today: date) -> str:
    return next(r for r in RELEASES if retires_on(r) > today)


def check(header: str | None, today: date | None = None) -> Refusal | str:
    """The release a request is served as, or the refusal Klaviyo would send."""
    today = today or datetime.now(UTC).date()
    if not header:
        return Refusal(
            400,
            "invalid",
            "Invalid input.",
            f"The 'revision' header is required (format: {FORMAT}).",
        )
    found = _REVISION.match(header)
    valid_date = True
    if found is not None:
        try:
            date.fromisoformat(found.group(1))
        except ValueError:
            valid_date = False
    if found is None or not valid_date:
        return Refusal(
            400, "invalid", "Invalid input.", f"Invalid revision '{header}' (format: {FORMAT})."
        )
    release = resolve(header)
    if release is None or found.group(1) > today.isoformat():
        return Refusal(404, "not_found", "Not found.", "No valid revisions found for method.")
    if retires_on(release) <= today:
        return Refusal(
            410,
            "gone",
            "Gone.",
            f"Revision {release} was retired on {retires_on(release).isoformat()}; send a "
            f"supported revision from {oldest_alive(today)} to {STABLE_REVISION}.",
        )
    return release
