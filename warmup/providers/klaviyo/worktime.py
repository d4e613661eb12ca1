"""How long a number of Klaviyo requests takes at an endpoint's rate tier (seed 000's "sync
time before sending"): the floor the client's limiter allows, with no 429 and no latency.

Fixed windows: ``burst`` requests a second and ``steady`` a minute (times the plan's
``rate_share``), so n requests need (n - 1) // steady full minutes plus the rest at the burst
rate. Different endpoints have separate limits, but a day's phases run one after another
(list changes, then the read-back), so the day's estimate is the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmup.providers.klaviyo.endpoints import ENDPOINTS, Tier


@dataclass(frozen=True)
class Work:
    what: str
    endpoint: str  # a name from ENDPOINTS
    requests: int

    def seconds(self, rate_share: float = 1.0) -> float:
        return tier_seconds(self.requests, tier_of(self.endpoint), rate_share)

    def to_json(self, rate_share: float = 1.0) -> dict[str, object]:
        tier = tier_of(self.endpoint)
        return {
            "what": self.what,
            "endpoint": self.endpoint,
            "tier": tier.name,
            "requests": self.requests,
            "seconds": round(self.seconds(rate_share), 1),
        }


def tier_of(endpoint: str) -> Tier:
    for known in ENDPOINTS:
        if known.name == endpoint:
            return known.tier
    raise KeyError(endpoint)


def max_items(endpoint: str) -> int:
    for known in ENDPOINTS:
        if known.name == endpoint and known.max_items:
            return known.max_items
    raise KeyError(endpoint)


def tier_seconds(requests: int, tier: Tier, rate_share: float = 1.0) -> float:
    if requests <= 0:
        return 0.0
    burst = max(1, int(tier.burst * rate_share))
    steady = max(1, int(tier.steady * rate_share))
    full_minutes = (requests - 1) // steady
    rest = requests - full_minutes * steady
    return 60.0 * full_minutes + rest / burst


def calls(items: int, endpoint: str) -> int:
    """Requests to move ``items`` through a batch endpoint (its documented maximum a call)."""
    return -(-items // max_items(endpoint)) if items > 0 else 0
