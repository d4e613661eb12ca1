"""The API key's scopes, checked before a run's first real call (seed 004: "Profiles Read,
Metrics Read, Events Read, Profiles Write, List Write, Subscriptions Write").

Klaviyo has no endpoint that lists a private key's scopes (klaviyo-api.md: a key lacking an
endpoint's scope gets 403 ``permission_denied``), so each scope is probed by one call that
changes nothing: a one-item read for a read scope, and for a write scope an empty body, which
Klaviyo refuses with 400 after it has checked the scope (403 when the key lacks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from warmup.errors import InvalidInput, KlaviyoError
from warmup.providers.klaviyo.client import KlaviyoClient


@dataclass(frozen=True)
class Probe:
    scopes: str
    method: str
    path: str


READ_PROBES = {
    "lists:read": Probe("lists:read", "GET", "/api/lists"),
    "profiles:read": Probe("profiles:read", "GET", "/api/profiles"),
    "metrics:read": Probe("metrics:read", "GET", "/api/metrics"),
    "events:read": Probe("events:read", "GET", "/api/events"),
}
WRITE_PROBES = {
    "lists:write profiles:write": Probe(
        "lists:write profiles:write", "POST", "/api/profile-bulk-import-jobs"
    ),
    "subscriptions:write": Probe(
        "subscriptions:write", "POST", "/api/profile-subscription-bulk-create-jobs"
    ),
}


def needed(*, engagement: bool, subscriptions: bool) -> list[Probe]:
    probes = [READ_PROBES["lists:read"], READ_PROBES["profiles:read"]]
    if engagement:
        probes += [READ_PROBES["metrics:read"], READ_PROBES["events:read"]]
    probes.append(WRITE_PROBES["lists:write profiles:write"])
    if subscriptions:
        probes.append(WRITE_PROBES["subscriptions:write"])
    return probes


def missing_scopes(client: KlaviyoClient, probes: list[Probe]) -> list[tuple[Probe, str]]:
    """The probes the key failed, each with what Klaviyo said. Other errors (401, 5xx after
    retries, network) propagate: they are not a scope's problem."""
    missing: list[tuple[Probe, str]] = []
    for probe in probes:
        try:
            if probe.method == "GET":
                # one item where the read pages by size; lists and metrics have fixed pages
                small = probe.path in ("/api/profiles", "/api/events")
                client.call("GET", probe.path, params={"page[size]": "1"} if small else None)
            else:
                client.call("POST", probe.path, json={"data": {}})
        except KlaviyoError as exc:
            if exc.status == 403:
                missing.append((probe, exc.message))
            elif not (probe.method == "POST" and exc.status == 400):
                raise
    return missing


def require_scopes(client: KlaviyoClient, probes: list[Probe]) -> None:
    """Raise InvalidInput naming every scope the key lacks (exit 2, before any change)."""
    missing = missing_scopes(client, probes)
    if missing:
        names = ", ".join(p.scopes for p, _ in missing)
        calls = "; ".join(f"{p.method} {p.path}: 403" for p, _ in missing)
        raise InvalidInput(
            f"the Klaviyo API key lacks scopes {names} ({calls})",
            hint="give the private key these scopes in Klaviyo (Settings → API keys), "
            "then run again; nothing was changed",
        )
