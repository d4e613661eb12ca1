"""The sandbox's account: profiles, lists, memberships, consent and async jobs.

Plain data with Klaviyo's rules (identifier conflicts, list-add idempotence, unsubscribe and
suppression reasons); no HTTP here. ``dump``/``load`` give a JSON snapshot for ``--state``.
"""

from __future__ import annotations

import base64
import bisect
import json
import os
import random
import re
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warmup.sandbox.events import EventLog
from warmup.sandbox.identity import email_refused

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
IDENTIFIERS = ("email", "phone_number", "external_id")


class Conflict(Exception):
    """An identifier already belongs to another profile (Klaviyo's 409 duplicate_profile)."""

    def __init__(self, profile_id: str) -> None:
        super().__init__(profile_id)
        self.profile_id = profile_id


class Invalid(Exception):
    """A per-profile 400 ``invalid``: ``pointer`` is relative to the profile object."""

    def __init__(self, detail: str, pointer: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_ulid(rng: random.Random) -> str:
    millis = int(time.time() * 1000)
    head = "".join(_ULID_ALPHABET[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(rng.choice(_ULID_ALPHABET) for _ in range(16))


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"next::{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split("::", 1)
        return int(value) if kind == "next" else None
    except (ValueError, UnicodeDecodeError):
        return None


def check_identifiers(attributes: dict[str, Any], *, strict: bool = False) -> None:
    email = attributes.get("email")
    if email is not None and (not _EMAIL.match(email) or email_refused(email, strict=strict)):
        raise Invalid("Invalid email address", "/attributes/email")
    phone = attributes.get("phone_number")
    if phone is not None and not _E164.match(phone):
        raise Invalid(
            "Invalid phone number format (Example of a valid format: +12345678901)",
            "/attributes/phone_number",
        )


@dataclass
class Members:
    """A list's members in join order; cursors are join sequence numbers, stable under removal."""

    seq_of: dict[str, int] = field(default_factory=dict)
    joined_at: dict[str, str] = field(default_factory=dict)
    order: list[tuple[int, str]] = field(default_factory=list)

    def add(self, profile_id: str, seq: int) -> None:
        if profile_id not in self.seq_of:
            self.seq_of[profile_id] = seq
            self.joined_at[profile_id] = now_iso()
            self.order.append((seq, profile_id))

    def remove(self, profile_id: str) -> None:
        if self.seq_of.pop(profile_id, None) is not None:
            self.joined_at.pop(profile_id, None)
            if len(self.order) > 2 * len(self.seq_of) + 1000:
                self.order = [(s, p) for s, p in self.order if self.seq_of.get(p) == s]

    def page(self, after: int, size: int) -> tuple[list[str], int | None]:
        """Up to ``size`` member ids after sequence ``after``, and the next cursor (or None)."""
        start = bisect.bisect_right(self.order, (after, "\uffff"))
        found: list[str] = []
        last = after
        for seq, pid in self.order[start:]:
            if self.seq_of.get(pid) != seq:
                continue
            if len(found) == size:
                return found, last
            found.append(pid)
            last = seq
        return found, None


@dataclass
class Job:
    id: str
    type: str
    created_at: str
    ready_at: float
    payload: dict[str, Any]
    status: str = "queued"
    total: int = 0
    completed: int = 0
    failed: int = 0
    completed_at: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class Account:
    """One Klaviyo account's data."""

    def __init__(self, *, job_delay: float = 1.0, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.job_delay = job_delay
        self.profiles: dict[str, dict[str, Any]] = {}
        self.index: dict[str, dict[str, str]] = {key: {} for key in IDENTIFIERS}
        self.lists: dict[str, dict[str, Any]] = {}
        self.members: dict[str, Members] = {}
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []
        self.seq = 0
        self.effects: dict[str, int] = {}
        self.events = EventLog()
        # adversities (warmup.sandbox.identity): a strict account and another client's edits
        self.strict = False
        self.meddle = 0.0
        self.meddled: list[str] = []
        self.meddle_left: int | None = None  # at most this many edits (tests), None: no cap

    # profiles -----------------------------------------------------------------------------
    def _count(self, effect: str, n: int = 1) -> None:
        self.effects[effect] = self.effects.get(effect, 0) + n

    def find(self, attributes: dict[str, Any]) -> set[str]:
        """Ids of existing profiles owning any identifier in ``attributes``."""
        found = set()
        for key in IDENTIFIERS:
            value = attributes.get(key)
            if value is not None:
                pid = self.index[key].get(_norm(key, value))
                if pid:
                    found.add(pid)
        return found

    def create_profile(self, attributes: dict[str, Any]) -> dict[str, Any]:
        check_identifiers(attributes, strict=self.strict)
        existing = self.find(attributes)
        if existing:
            raise Conflict(sorted(existing)[0])
        pid = new_ulid(self.rng)
        profile = {
            "id": pid,
            "attributes": {"created": now_iso(), "updated": now_iso(), "properties": {}},
            "consent": "NEVER_SUBSCRIBED",
            "suppression": None,
        }
        self.profiles[pid] = profile
        self._apply(profile, attributes)
        self._count("profile_created")
        return profile

    def upsert_profile(
        self, attributes: dict[str, Any], profile_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create or update; True when created. 409 when identifiers name different profiles."""
        check_identifiers(attributes, strict=self.strict)
        existing = self.find(attributes)
        if profile_id is not None:
            if profile_id not in self.profiles:
                raise KeyError(profile_id)
            existing.add(profile_id)
        if len(existing) > 1:
            others = sorted(existing - {profile_id} if profile_id else existing)
            raise Conflict(others[0])
        if not existing:
            return self.create_profile(attributes), True
        profile = self.profiles[existing.pop()]
        self._apply(profile, attributes)
        return profile, False

    def _apply(self, profile: dict[str, Any], attributes: dict[str, Any]) -> None:
        attrs = profile["attributes"]
        for key, value in attributes.items():
            if key in IDENTIFIERS:
                old = attrs.get(key)
                if old is not None:
                    self.index[key].pop(_norm(key, old), None)
                if value is not None:
                    value = _norm(key, value)
                    self.index[key][value] = profile["id"]
            if key == "properties" and value is not None:
                attrs["properties"] = {**attrs.get("properties", {}), **value}
            elif value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        attrs["updated"] = now_iso()

    def profile_by(self, key: str, value: str) -> dict[str, Any] | None:
        pid = self.index[key].get(_norm(key, value))
        return self.profiles.get(pid) if pid else None

    # lists --------------------------------------------------------------------------------
    def create_list(self, name: str, opt_in: str | None) -> dict[str, Any]:
        lid = "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(6))
        stamp = now_iso()
        record = {
            "id": lid,
            "name": name,
            "created": stamp,
            "updated": stamp,
            "opt_in_process": opt_in or "single_opt_in",
        }
        self.lists[lid] = record
        self.members[lid] = Members()
        self._count("list_created")
        return record

    def add_members(self, list_id: str, profile_ids: list[str]) -> None:
        members = self.members[list_id]
        for pid in profile_ids:
            if pid in self.profiles:
                self.seq += 1
                members.add(pid, self.seq)
        self._count("list_add_calls")

    def remove_members(self, list_id: str, profile_ids: list[str]) -> None:
        members = self.members[list_id]
        for pid in profile_ids:
            members.remove(pid)
        self._count("list_remove_calls")

    # consent ------------------------------------------------------------------------------
    def subscribe(self, profile: dict[str, Any]) -> None:
        profile["consent"] = "SUBSCRIBED"
        if profile["suppression"] and profile["suppression"]["reason"] in (
            "UNSUBSCRIBE",
            "SPAM_REPORT",
            "USER_SUPPRESSED",
        ):
            profile["suppression"] = None
        profile["attributes"]["updated"] = now_iso()

    def unsubscribe(self, profile: dict[str, Any]) -> None:
        profile["consent"] = "UNSUBSCRIBED"
        profile["suppression"] = {"reason": "UNSUBSCRIBE", "timestamp": now_iso()}
        profile["attributes"]["updated"] = now_iso()

    def suppress(self, profile: dict[str, Any]) -> None:
        if profile["suppression"] is None:
            profile["suppression"] = {"reason": "USER_SUPPRESSED", "timestamp": now_iso()}
            profile["attributes"]["updated"] = now_iso()

    # jobs ---------------------------------------------------------------------------------
    def queue_job(self, kind: str, payload: dict[str, Any], total: int) -> Job:
        job = Job(
            id=new_ulid(self.rng),
            type=kind,
            created_at=now_iso(),
            ready_at=time.monotonic() + self.job_delay,
            payload=payload,
            total=total,
        )
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def settle(self, run: Any) -> None:
        """Complete every job that is due; ``run(job)`` applies its effect."""
        now = time.monotonic()
        due = [job for job in self.pending if job.ready_at <= now]
        if not due:
            return
        self.pending = [job for job in self.pending if job.ready_at > now]
        for job in due:
            run(job)
            job.status = "complete"
            job.completed_at = now_iso()

    # persistence --------------------------------------------------------------------------
    def dump(self, path: Path) -> None:
        """Write an atomic JSON snapshot (pending jobs are settled first by the caller)."""
        data = {
            "seq": self.seq,
            "profiles": self.profiles,
            "lists": self.lists,
            "members": {
                lid: [
                    [pid, seq, m.joined_at[pid]] for seq, pid in m.order if m.seq_of.get(pid) == seq
                ]
                for lid, m in self.members.items()
            },
            "events": self.events.dump(),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.seq = data["seq"]
        self.profiles = data["profiles"]
        self.lists = data["lists"]
        self.events.load(data.get("events", {}))
        for pid, profile in self.profiles.items():
            for key in IDENTIFIERS:
                value = profile["attributes"].get(key)
                if value is not None:
                    self.index[key][value] = pid
        for lid, rows in data["members"].items():
            members = Members()
            for pid, seq, joined in rows:
                members.seq_of[pid] = seq
                members.joined_at[pid] = joined
                members.order.append((seq, pid))
            self.members[lid] = members


def _norm(key: str, value: str) -> str:
    # Klaviyo's case handling is unconfirmed; matching emails case-insensitively is the safe side.
    return value.strip().lower() if key == "email" else value


def error_id() -> str:
    return str(uuid.uuid4())
