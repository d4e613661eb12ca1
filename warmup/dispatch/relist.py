"""Forget the Klaviyo list ids warmup resolved from list names, so the next sync finds (or
creates) each list by its name again: the way back after a list was deleted in Klaviyo, whose
remembered id then answers 404 to every change."""

from __future__ import annotations

from warmup.store import Store
from warmup.store.lists import KlaviyoLists


def forget_resolved_lists(store: Store) -> list[tuple[str, str]]:
    """Drop every remembered name → id; returns the (name, id) pairs forgotten. Lists the plan
    names by ``id:`` or ``per_day:`` are not remembered here: change those in the plan."""
    return KlaviyoLists(store).forget_resolved()
