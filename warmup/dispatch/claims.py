"""Which plan owns which Klaviyo list, so one plan's repair never edits another plan's list.

Each store records the list ids it created or found by name (``klaviyo_lists``). Plans do not
see each other's stores, so every claim is also written to a small registry shared by the plans
on this machine: ``$WARMUP_STATE_DIR/list-claims.json`` (default ``~/.local/state/warmup``),
list id → the claiming plan's name and store. Every command that writes to a list (``run``,
``sync``, the consent flow, ``serve``) refuses a list claimed by another store that still
exists, unless ``--claim`` takes it over knowingly; the stores that held it before are kept
(``before``) so that a cut-back or repair never removes the members they added. A verified
copy of a store (``warmup store copy``) is the same plan's store: it joins the claim's
``copies``, so the plan may go on from either — the live store after a backup, or the copy
after a move — and the one that writes last holds the claim. The copy relation itself is kept
too (under ``#copies``, which no Klaviyo list id can be), so a list first claimed after the
copy, by either store, is the other's as well.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from warmup.errors import Refused, StoreError
from warmup.store.backends import is_postgres_url, store_location
from warmup.store.lists import members_in_store

FILE = "list-claims.json"
# The registry's entry for stores that are copies of each other, beside the list ids (Klaviyo's
# are letters and digits): {"groups": [[store, …], …]}, each group one plan's stores.
COPIES = "#copies"


def registry_dir() -> Path:
    chosen = os.environ.get("WARMUP_STATE_DIR") or os.environ.get("XDG_STATE_HOME")
    if chosen:
        return Path(chosen) / ("" if os.environ.get("WARMUP_STATE_DIR") else "warmup")
    return Path.home() / ".local" / "state" / "warmup"


@contextmanager
def _registry() -> Iterator[dict[str, dict[str, Any]]]:
    folder = registry_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    with open(folder / (FILE + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, dict[str, Any]] = (
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


def store_name(store: Path) -> str:
    """How the registry names a store: a SQLite file by its absolute path, a PostgreSQL store
    by its URL (which a Path would fold and resolve against the working folder)."""
    location = store_location(store)
    return location if is_postgres_url(location) else str(store.resolve())


def still_there(name: str) -> bool:
    """Whether the store a claim names may still hold the list: a SQLite file that exists, or
    any PostgreSQL database (finding out would mean connecting to another plan's server)."""
    return is_postgres_url(name) or Path(name).exists()


def owner(list_id: str) -> dict[str, Any] | None:
    with _registry() as data:
        return data.get(list_id)


def _claims(data: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The list claims of the registry, without its copy relation."""
    return ((key, held) for key, held in data.items() if key != COPIES)


def _relatives(data: dict[str, dict[str, Any]], name: str) -> set[str]:
    """``name`` and every store known to be its copy or its source, however many copies
    apart: by the copy relation, and by the claims' ``copies`` (registries written before
    the relation was kept hold only those)."""
    linked = [set(g) for g in data.get(COPIES, {}).get("groups", [])]
    linked += [{held["store"], *held.get("copies", [])} for _, held in _claims(data)]
    found, grew = {name}, True
    while grew:
        grew = False
        for stores in linked:
            if stores & found and not stores <= found:
                found |= stores
                grew = True
    return found


def _join(data: dict[str, dict[str, Any]], source: str, copy: str) -> None:
    """``copy`` now holds a copy of ``source``: it joins ``source``'s stores and leaves any it
    was one of before (a store overwritten with --replace is no longer what it held)."""
    groups = data.setdefault(COPIES, {}).setdefault("groups", [])
    groups[:] = [[s for s in g if s != copy] for g in groups]
    merged = _relatives(data, source) | {copy}
    groups[:] = [g for g in groups if len(g) > 1 and not set(g) & merged] + [sorted(merged)]


def check(list_id: str, plan: str, store: Path, *, take_over: bool) -> None:
    """Refuse to write to a list another plan's store has claimed (``take_over`` claims it,
    remembering the earlier holder so its members are never removed)."""
    me = store_name(store)
    with _registry() as data:
        held = data.get(list_id)
        family = _family(held, data)
        foreign = held and me not in family and still_there(held["store"])
        if foreign and held and not take_over:
            raise Refused(
                f"Klaviyo list {list_id} belongs to plan {held['plan']!r} "
                f"(store {held['store']}); writing to it from plan {plan!r} would change "
                "that plan's audience, so nothing was changed",
                hint="give this plan its own list name (default names carry the plan's "
                "name), or pass --claim (`warmup run` or `warmup sync`) to take the list "
                "over knowingly; the members the other plan added are never removed",
            )
        before = [s for s in (held or {}).get("before", []) if s != me]
        copies: list[str] = []
        if held and me in family:
            copies = sorted(family - {me})
        elif held:
            before += sorted(family)
        data[list_id] = {
            "plan": plan,
            "store": me,
            **({"before": before} if before else {}),
            **({"copies": copies} if copies else {}),
        }


def _family(held: dict[str, Any] | None, data: dict[str, dict[str, Any]]) -> set[str]:
    """The claiming store and its verified copies, those made after the claim included: one
    plan's stores."""
    if not held:
        return set()
    named = {held["store"], *held.get("copies", [])}
    return set().union(*(_relatives(data, name) for name in named))


def held_by_another(list_id: str, store: Path) -> dict[str, Any] | None:
    """The registry's entry for ``list_id`` when a store other than ``store`` (and not one of
    its copies) holds it and still exists: the claim :func:`check` refuses by. Else None."""
    with _registry() as data:
        held = data.get(list_id)
        family = _family(held, data)
    if held and store_name(store) not in family and still_there(held["store"]):
        return held
    return None


def add_copy(source: Path, copy: Path) -> list[str]:
    """A verified copy of store ``source`` at ``copy`` (``warmup store copy``) is the same
    plan's store: it joins the claims of ``source`` (and of ``source``'s own copies), so the
    plan goes on from the copy after a move, and from ``source`` after a backup, without
    either being refused by the other's claim. Returns those list ids."""
    origin, added = store_name(source), store_name(copy)
    shared: list[str] = []
    with _registry() as data:
        for list_id, held in _claims(data):
            family = _family(held, data)
            if origin in family and added not in family:
                held["copies"] = sorted((family | {added}) - {held["store"]})
                held["before"] = [s for s in held.get("before", []) if s != added]
                if not held["before"]:
                    del held["before"]
                shared.append(list_id)
        _join(data, origin, added)
    return shared


def others_members(list_id: str, store: Path) -> set[str]:
    """Emails (lower case) that other stores which claimed ``list_id`` added to it: a cut-back
    or repair from ``store`` must leave them in the list."""
    me = store_name(store)
    with _registry() as data:
        held = data.get(list_id)
        family = _family(held, data)
    earlier = set((held or {}).get("before", []))
    # a copy of this store is this plan: its members are not another plan's to protect
    stores = (earlier if me in family else family | earlier) - {me}
    emails: set[str] = set()
    for other in stores:
        if not still_there(other):
            continue
        try:
            emails.update(members_in_store(other, list_id))
        except StoreError:
            # unreadable store: nothing known about its members, so protect nobody extra
            continue
    return emails
