"""The Klaviyo endpoints warmup calls: rate-limit tier and batch maximum of each.

Figures from klaviyo-api.md §2–3 (OpenAPI ``x-klaviyo-ratelimit``). The L tier's steady limit is
750/min in revision 2026-07-15 and 700/min before; 700 keeps us under both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmup.klaviyo_revisions import STABLE_REVISION

# The revision warmup sends unless the plan pins another (providers.klaviyo.revision): Klaviyo's
# current stable release. Moving it: README "Klaviyo sync and the sandbox".
REVISION = STABLE_REVISION
REVISION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


@dataclass(frozen=True)
class Tier:
    name: str
    burst: int  # per second
    steady: int  # per minute
    daily: int | None = None


XS = Tier("XS", 1, 15)
S = Tier("S", 3, 60)
M = Tier("M", 10, 150)
L = Tier("L", 75, 700)
XL = Tier("XL", 350, 3500)
LIST_CREATE = Tier("M+daily", 10, 150, 150)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    pattern: re.Pattern[str]
    tier: Tier
    max_items: int | None = None


def _e(name: str, method: str, path: str, tier: Tier, max_items: int | None = None) -> Endpoint:
    return Endpoint(name, method, re.compile(f"^{path}/?$"), tier, max_items)


_ID = r"[^/]+"
ENDPOINTS = (
    _e("create_profile", "POST", "/api/profiles", L),
    _e("upsert_profile", "POST", "/api/profile-import", L),
    _e("get_profiles", "GET", "/api/profiles", L),
    _e("get_profile", "GET", f"/api/profiles/{_ID}", L),
    _e("bulk_import", "POST", "/api/profile-bulk-import-jobs", M, 10_000),
    _e("get_import_job", "GET", f"/api/profile-bulk-import-jobs/{_ID}", M),
    _e("get_import_errors", "GET", f"/api/profile-bulk-import-jobs/{_ID}/import-errors", M),
    _e("create_list", "POST", "/api/lists", LIST_CREATE),
    _e("get_lists", "GET", "/api/lists", L),
    _e("get_list", "GET", f"/api/lists/{_ID}", L),
    _e("add_to_list", "POST", f"/api/lists/{_ID}/relationships/profiles", M, 1000),
    _e("remove_from_list", "DELETE", f"/api/lists/{_ID}/relationships/profiles", M, 1000),
    _e("get_list_profiles", "GET", f"/api/lists/{_ID}/profiles", L),
    _e("get_list_profile_ids", "GET", f"/api/lists/{_ID}/relationships/profiles", L),
    _e("subscribe", "POST", "/api/profile-subscription-bulk-create-jobs", L, 1000),
    _e("unsubscribe", "POST", "/api/profile-subscription-bulk-delete-jobs", L, 100),
    _e("suppress", "POST", "/api/profile-suppression-bulk-create-jobs", L, 100),
    _e("get_suppress_job", "GET", f"/api/profile-suppression-bulk-create-jobs/{_ID}", L),
    _e("unsuppress", "POST", "/api/profile-suppression-bulk-delete-jobs", L, 100),
    # engagement pulls (warmup.engagement): OAS get_events is XL, get_metrics M
    _e("get_events", "GET", "/api/events", XL),
    _e("get_metrics", "GET", "/api/metrics", M),
)


def endpoint_for(method: str, path: str) -> Endpoint | None:
    for endpoint in ENDPOINTS:
        if endpoint.method == method and endpoint.pattern.match(path):
            return endpoint
    return None


READBACK_PAGE = 100


def readback_cost(recipients: int, rate_share: float = 1.0) -> tuple[int, float]:
    """(requests, seconds) to read ``recipients`` emails back from a list: one page of 100 per
    request (the floor) on the L-tier list-members endpoint, whose fixed windows allow ``burst``
    a second and ``steady`` a minute (times ``rate_share``)."""
    requests = -(-recipients // READBACK_PAGE)
    burst = max(1, int(L.burst * rate_share))
    steady = max(1, int(L.steady * rate_share))
    full_minutes = (requests - 1) // steady if requests else 0
    rest = requests - full_minutes * steady
    return requests, 60.0 * full_minutes + rest / burst
