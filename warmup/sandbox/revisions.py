"""Klaviyo's ``revision`` header as Klaviyo treats it.

The release table and its lifetimes are ``warmup.klaviyo_revisions`` (the plan checks
use them too). The sandbox knows one set of shapes, those of ``SHAPES_REVISION`` (the OpenAPI
documents it ships), and serves them to every revision that is still alive up to
``STABLE_REVISION``, the newest general-availability release (the one the official SDKs send).

Choices where Klaviyo's answer is unconfirmed, documented in the README: a retired revision is
answered 410 ``gone`` (Klaviyo's answer to the retired v1/v2 APIs); a date in the future or
before the first release is 404 "No valid revisions found for method." (observed for a revision
in which the route does not exist); ``.pre`` betas are served as their date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from warmup.klaviyo_revisions import (
    FORMAT,
    LIFETIME_YEARS,
    RELEASES,
    STABLE_REVISION,
    oldest_alive,
    resolve,
    retires_on,
)
from warmup.klaviyo_revisions import PATTERN as _REVISION

__all__ = [
    "FORMAT",
    "LIFETIME_YEARS",
    "RELEASES",
    "SHAPES_REVISION",
    "STABLE_REVISION",
    "Refusal",
    "check",
    "oldest_alive",
    "resolve",
    "retires_on",
]

# The shipped OpenAPI documents (klaviyo/openapi, commit f0a30ba) describe this revision.
SHAPES_REVISION = "2026-07-15"


@dataclass(frozen=True)
class Refusal:
    """Why a revision header is refused: the HTTP status, Klaviyo's code and title, a detail."""

    status: int
    code: str
    title: str
    detail: str


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
