"""The HTTP request a Klaviyo webhook row becomes. One function for the dispatcher that sends it
and the dry run that shows it, so the preview is exactly what goes over the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warmup.plan import LoadedPlan
from warmup.plan.render import render_webhook
from warmup.plan.resources import bundled_dir


def template_dir(loaded: LoadedPlan, template: str) -> Path:
    # A plan's own templates folder wins; the companions it lacks come from the bundled ones.
    if (loaded.templates_dir / template).exists():
        return loaded.templates_dir
    return bundled_dir("templates")


def list_identity(profile: dict[str, Any]) -> dict[str, Any]:
    """Identity is email: a list needs only the email's profile, and another profile's phone
    or external id in an import would move that profile instead."""
    return {**profile, "phone": None, "external_id": None}


def webhook_request(
    loaded: LoadedPlan,
    template: str,
    profiles: list[dict[str, Any]],
    *,
    which: str | None,
    list_id: str | None,
    list_mode: str,
    day: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"method", "path", "body"}`` for one batch of ``profiles`` (all with a Klaviyo id or
    all without, as the dispatcher batches them) to list ``which``."""
    consented = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    context = {
        "profiles": [list_identity(p) for p in profiles] if which else profiles,
        "list_id": list_id,
        "list_mode": list_mode,
        "consented_at": consented.isoformat(),
        # subscribe: skip the list's double opt-in only when the plan says historical import
        "historical_import": loaded.plan.providers.klaviyo.subscribe_opt_in == "historical_import",
        "day": day,
        **(extra or {}),
    }
    text = render_webhook(template_dir(loaded, template), template, context)
    envelope: dict[str, Any] = json.loads(text)
    return envelope
