"""Which plan owns which Klaviyo list, so one plan's repair never edits another plan's list.

Each store records the list ids it created or found by name (``klaviyo_lists``). Plans do not
see each other's stores, so every claim is also written to a small registry shared by the plans
on this machine: ``$WARMUP_STATE_DIR/list-claims.json`` (default ``~/.local/state/warmup``),
list id → the claiming plan's name and store. ``sync --repair`` refuses a list claimed by
another store that still exists, unless ``--claim`` takes it over knowingly.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warmup.errors import Refused

FILE = "list-claims.json"


def registry_dir() -> Path:
    chosen = os.environ.get("WARMUP_STATE_DIR") or os.environ.get("XDG_STATE_HOME")
    if chosen:
        return Path(chosen) / ("" if os.environ.get("WARMUP_STATE_DIR") else "warmup")
    return Path.home() / ".local" / "state" / "warmup"


@contextmanager
def _registry() -> Iterator[dict[str, dict[str, str]]]:
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    with open(folder / (FILE + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, dict[str, str]] = (
                json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            )
        except ValueError:
            data = {}
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)


def owner(list_id: str) -> dict[str, str] | None:
    with _registry() as data:
        return data.get(list_id)


def claim(list_id: str, plan: str, store: Path, *, take_over: bool = False) -> None:
    """Record that ``store`` owns ``list_id``; an existing claim by another live store stays
    unless ``take_over``."""
    me = str(store.resolve())
    with _registry() as data:
        held = data.get(list_id)
        if held and held["store"] != me and Path(held["store"]).exists() and not take_over:
            return
        data[list_id] = {"plan": plan, "store": me}


def check(list_id: str, plan: str, store: Path, *, take_over: bool) -> None:
    """Refuse to edit a list another plan's store has claimed (``take_over`` claims it)."""
    me = str(store.resolve())
    with _registry() as data:
        held = data.get(list_id)
        foreign = held and held["store"] != me and Path(held["store"]).exists()
        if foreign and held and not take_over:
            raise Refused(
                f"Klaviyo list {list_id} belongs to plan {held['plan']!r} "
                f"(store {held['store']}); repairing it from this plan would change "
                "that plan's audience",
                hint="give this plan its own list name (default names carry the plan's "
                "name), or pass --claim to take the list over knowingly",
            )
        data[list_id] = {"plan": plan, "store": me}
