"""Drain the engine's Klaviyo webhook rows and keep the plan's Klaviyo lists exact.

Guarantees, per day N:
- a webhook row becomes ``sent`` only after Klaviyo confirmed it (204/202, and a bulk import job
  completed), so the customer's email row (``after_key``) waits until Klaviyo will skip them;
- a per-profile 4xx (an invalid phone, say) puts that row ``on_hold`` with Klaviyo's message and
  the rest of the batch goes on; a call that keeps failing leaves its rows ``failed``: nothing is
  dropped silently, ``klaviyo_backlog`` lists them and ``sync`` drives them again;
- after the drain, a single exclusion list is cut back to the customers allocated ``new`` on day
  N (per-day lists need no cut); ``verify_lists`` reads the lists back and ``repair`` fixes them.
Every Klaviyo call is idempotent (list adds/removes, imports keyed by email), so a killed run is
simply run again: rows left ``sending`` are sent once more, nothing twice in effect.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warmup.errors import InvalidInput, KlaviyoError, ProviderError
from warmup.plan import LoadedPlan
from warmup.plan.models import ListRef
from warmup.providers.klaviyo import KlaviyoClient, endpoint_for
from warmup.providers.klaviyo import lists as ops
from warmup.render import render_webhook
from warmup.resources import bundled_dir
from warmup.store import Store, now_iso, open_store

log = logging.getLogger(__name__)
LOCK_NAME = "dispatch-klaviyo"
ADD_TEMPLATE = "klaviyo/add-profiles-to-list.json.j2"
UNSUBSCRIBE_TEMPLATE = "klaviyo/unsubscribe-profiles.json.j2"
SUBSCRIBE_PATH = "/api/profile-subscription-bulk-create-jobs"
# Klaviyo's detail for a 409 duplicate_profile (also in a bulk import's errors).
DUPLICATE_PROFILE = "already exists with one of these identifiers"
PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")
_INDEXED_POINTER = re.compile(r"^/data/(?:attributes/profiles/data/)?(\d+)(?:/|$)")


@dataclass
class KlaviyoReport:
    day: int
    lists: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    already_members: int = 0
    on_hold: int = 0
    failed: int = 0
    removed: int = 0
    ids_resolved: int = 0
    requests: int = 0
    throttled: int = 0
    # Joined by email only: their phone or external id belongs to another Klaviyo profile.
    email_only: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class ListDiff:
    which: str
    list_id: str
    expected: int
    actual: int
    missing: list[str]
    extra: list[str]
    held: int

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra


@dataclass
class VerifyReport:
    day: int
    diffs: list[ListDiff]
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.diffs)


@dataclass
class _Row:
    id: int
    day: int
    customer_id: int
    payload: dict[str, Any]
    profile: dict[str, Any]


def client_for(loaded: LoadedPlan, **kwargs: Any) -> KlaviyoClient:
    """The plan's Klaviyo client; the key comes from the plan's environment variable."""
    k = loaded.plan.providers.klaviyo
    return KlaviyoClient.from_env(
        k.base_url, k.api_key_env, revision=k.revision, rate_share=k.rate_share, **kwargs
    )


def day_date(loaded: LoadedPlan, store: Store, day: int) -> str:
    row = store.conn.execute("SELECT date FROM days WHERE day = ?", (day,)).fetchone()
    if row:
        return str(row[0])
    return (loaded.plan.start_date + timedelta(days=day - 1)).isoformat()


def _ref(loaded: LoadedPlan, which: str) -> ListRef:
    k = loaded.plan.providers.klaviyo
    return k.exclusion_list if which == "exclusion" else k.unsubscribe_list


def is_per_day(loaded: LoadedPlan, which: str) -> bool:
    ref = _ref(loaded, which)
    return ref.per_day is not None or bool(
        ref.name and ("{day}" in ref.name or "{date}" in ref.name)
    )


def resolve_list(
    loaded: LoadedPlan, store: Store, client: KlaviyoClient, which: str, day: int
) -> str:
    """The Klaviyo list id for ``which`` ('exclusion' | 'unsubscribe') on ``day``; names are
    found or created once and remembered in the store."""
    ref = _ref(loaded, which)
    if ref.id:
        return ref.id
    if ref.per_day is not None:
        if day not in ref.per_day:
            raise InvalidInput(
                f"providers.klaviyo.{which}_list.per_day has no list for day {day}",
                hint=f"add `{day}: <list id>` under per_day",
            )
        return ref.per_day[day]
    assert ref.name is not None
    name = ref.name.replace("{day}", str(day)).replace("{date}", day_date(loaded, store, day))
    key = f"{which}:{name}"
    row = store.conn.execute("SELECT list_id FROM klaviyo_lists WHERE ref = ?", (key,)).fetchone()
    if row:
        return str(row[0])
    list_id, created = ops.find_or_create_list(client, name)
    store.conn.execute(
        "INSERT OR REPLACE INTO klaviyo_lists (ref, name, list_id, created, resolved_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (key, name, list_id, int(created), now_iso()),
    )
    log.info("Klaviyo %s list %r is %s%s", which, name, list_id, " (created)" if created else "")
    return list_id


def _template_dir(loaded: LoadedPlan, template: str) -> Path:
    # A plan's own templates folder wins; the companions it lacks come from the bundled ones.
    if (loaded.templates_dir / template).exists():
        return loaded.templates_dir
    return bundled_dir("templates")


class _Drain:
    def __init__(
        self,
        loaded: LoadedPlan,
        store: Store,
        day: int,
        client: KlaviyoClient,
        report: KlaviyoReport,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.conn = store.conn
        self.day = day
        self.client = client
        self.report = report
        self.settings = loaded.plan.providers.klaviyo

    # outbox rows ----------------------------------------------------------------------------
    def rows(self, retry_held: bool) -> list[_Row]:
        statuses = ["pending", "sending"] + (["failed", "on_hold"] if retry_held else [])
        marks = ",".join("?" for _ in statuses)
        # An id from the import is not trusted for list calls (see migration 030): such
        # customers join through a bulk import by email, which the job's completion confirms.
        fields = ", ".join(
            "CASE WHEN c.klaviyo_id_confirmed THEN c.klaviyo_id END"
            if name == "klaviyo_id"
            else f"c.{name}"
            for name in PROFILE_FIELDS
        )
        found = []
        # A day's rows share a handful of payloads (the node's settings): one dict each, not one
        # per row, which at 85,000 rows of a 100k warm-up's last day was ~60 MB.
        payloads: dict[str, dict[str, Any]] = {}
        for row in self.conn.execute(
            f"SELECT o.id, o.day, o.customer_id, o.payload, {fields} FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'webhook' "
            f"AND o.provider = 'klaviyo' AND o.day <= ? AND o.status IN ({marks}) "
            "ORDER BY o.id",
            (self.day, *statuses),
        ):
            profile = dict(zip(PROFILE_FIELDS, row[4:], strict=True))
            payload = payloads.get(row[3])
            if payload is None:
                payload = payloads[row[3]] = json.loads(row[3])
            found.append(_Row(int(row[0]), int(row[1]), int(row[2]), payload, profile))
        return found

    def mark(
        self, rows: list[_Row], status: str, error: str | None = None, list_id: str | None = None
    ) -> None:
        if not rows:
            return
        stamp = now_iso()
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET status = ?, last_error = ?, updated_at = ?, "
                "attempts = attempts + (? = 'sending') WHERE id = ?",
                [(status, error, stamp, status, r.id) for r in rows],
            )
            if status == "sent" and list_id:
                conn.executemany(
                    "INSERT OR IGNORE INTO klaviyo_members (list_id, customer_id, added_at) "
                    "VALUES (?, ?, ?)",
                    [(list_id, r.customer_id, stamp) for r in rows],
                )
        if status == "sent":
            self.report.sent += len(rows)
        elif status == "on_hold":
            self.report.on_hold += len(rows)
        elif status == "failed":
            self.report.failed += len(rows)

    # sending --------------------------------------------------------------------------------
    def drain(self, retry_held: bool) -> None:
        groups: dict[tuple[str | None, str, int], list[_Row]] = defaultdict(list)
        for row in self.rows(retry_held):
            which = row.payload.get("list")
            list_day = row.day if which and is_per_day(self.loaded, which) else 0
            groups[(which, row.payload.get("template", ADD_TEMPLATE), list_day)].append(row)
        for (which, template, list_day), rows in groups.items():
            list_id = None
            if which:
                list_id = resolve_list(
                    self.loaded, self.store, self.client, which, list_day or self.day
                )
                self.report.lists[which] = list_id
            rows = self.skip_confirmed(template, list_id, rows)
            batch = max(int(r.payload.get("batch_size", 1)) for r in rows) if rows else 1
            with_id = [r for r in rows if r.profile["klaviyo_id"]]
            without_id = [r for r in rows if not r.profile["klaviyo_id"]]
            for part in (with_id, without_id):
                self.send_all(template, which, list_id, part, batch)

    def skip_confirmed(self, template: str, list_id: str | None, rows: list[_Row]) -> list[_Row]:
        """Customers Klaviyo already confirmed in the list cost no call (yesterday's ones)."""
        if not list_id or template != ADD_TEMPLATE or self.settings.list_mode != "force_add":
            return rows
        members = {
            int(c)
            for (c,) in self.conn.execute(
                "SELECT customer_id FROM klaviyo_members WHERE list_id = ?", (list_id,)
            )
        }
        known = [r for r in rows if r.customer_id in members]
        self.mark(known, "sent", list_id=list_id)
        self.report.already_members += len(known)
        return [r for r in rows if r.customer_id not in members]

    def send_all(
        self, template: str, which: str | None, list_id: str | None, rows: list[_Row], batch: int
    ) -> None:
        size = batch
        while rows:
            chunk = rows[:size]
            envelope = self.render(template, list_id, chunk)
            endpoint = endpoint_for(envelope["method"], envelope["path"])
            if endpoint and endpoint.max_items and len(chunk) > endpoint.max_items:
                size = endpoint.max_items
                continue
            self.mark(chunk, "sending")
            done = self.send_chunk(envelope, which, list_id, chunk)
            rows = rows[len(chunk) :] if done is None else [*done, *rows[len(chunk) :]]

    def render(
        self,
        template: str,
        list_id: str | None,
        rows: list[_Row],
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        consented = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
        context = {
            "profiles": [r.profile for r in rows],
            "list_id": list_id,
            "list_mode": self.settings.list_mode,
            "consented_at": consented.isoformat(),
            "day": self.day,
            **(extra or {}),
        }
        text = render_webhook(_template_dir(self.loaded, template), template, context)
        envelope: dict[str, Any] = json.loads(text)
        return envelope

    def send_chunk(
        self, envelope: dict[str, Any], which: str | None, list_id: str | None, chunk: list[_Row]
    ) -> list[_Row] | None:
        """Send one batch. Returns the rows to send again (a per-profile 400 took one out)."""
        try:
            response = self.client.call(
                envelope["method"], envelope["path"], json=envelope.get("body")
            )
            held: dict[str, str] = {}
            if response.content:
                data = response.json().get("data") or {}
                if isinstance(data, dict) and data.get("type") == "profile-bulk-import-job":
                    held = ops.wait_for_import(
                        self.client, str(data["id"]), poll=0.02 if self.client.scale > 1 else 0.5
                    ).errors
            unconfirmed: set[str] = set()
            if envelope["path"].rstrip("/") == SUBSCRIBE_PATH and list_id:
                unconfirmed = self.await_subscriptions(list_id, chunk)
            if which == "unsubscribe" and self.settings.unsubscribe_via_api:
                for part in ops.chunks(chunk, ops.MAX_UNSUBSCRIBE):
                    unsub = self.render(UNSUBSCRIBE_TEMPLATE, None, list(part))
                    self.client.call(unsub["method"], unsub["path"], json=unsub["body"])
        except KlaviyoError as exc:
            if exc.status in (401, 403):
                self.mark(chunk, "pending")
                raise  # a wrong key or scope fails every call alike: stop, hold nothing
            if exc.status >= 500 or exc.status == 429:
                self.mark(chunk, "failed", exc.message)
                self.report.problems.append(exc.message)
                return None
            index = _failed_index(exc)
            if index is not None and index < len(chunk):
                detail = exc.errors[0].detail if exc.errors else exc.message
                self.mark([chunk[index]], "on_hold", f"Klaviyo {exc.status}: {detail}")
                return chunk[:index] + chunk[index + 1 :]
            self.mark(chunk, "failed", exc.message)
            self.report.problems.append(exc.message)
            return None
        except ProviderError as exc:
            self.mark(chunk, "failed", exc.message)
            self.report.problems.append(exc.message)
            return None
        late = [r for r in chunk if (r.profile["email"] or "").lower() in unconfirmed]
        self.mark(
            late,
            "failed",
            "Klaviyo accepted the subscription job but has not added "
            "this profile to the list yet; `warmup sync PLAN` sends it again",
        )
        chunk = [r for r in chunk if r not in late]
        bad = [r for r in chunk if (r.profile["email"] or "").lower() in held]
        # A phone or external id that belongs to another Klaviyo profile must not keep the
        # customer out of the list: the list needs only the email's profile. Once, by email.
        again = [
            replace(r, profile={**r.profile, "phone": None, "external_id": None})
            for r in bad
            if DUPLICATE_PROFILE in held[(r.profile["email"] or "").lower()]
            and (r.profile["phone"] or r.profile["external_id"])
        ]
        for row in again:
            log.warning(
                "Klaviyo: %s's phone or external id belongs to another profile; sending it by "
                "email only",
                row.profile["email"],
            )
        self.report.email_only += len(again)
        retried = {r.id for r in again}
        for row in bad:
            if row.id not in retried:
                message = held[(row.profile["email"] or "").lower()]
                self.mark([row], "on_hold", f"Klaviyo: {message}")
        self.mark([r for r in chunk if r not in bad], "sent", list_id=list_id)
        return again or None

    def await_subscriptions(self, list_id: str, chunk: list[_Row]) -> set[str]:
        """Subscription jobs cannot be polled (no GET): confirm by reading the list for the
        batch's emails until all joined. Stragglers are returned as not yet confirmed."""
        waiting = {(r.profile["email"] or "").lower() for r in chunk}
        poll = 0.02 if self.client.scale > 1 else 0.5
        deadline = time.monotonic() + (10 if self.client.scale > 1 else 120)
        while waiting and time.monotonic() < deadline:
            joined = {
                (m.email or "").lower()
                for m in ops.iter_members(self.client, list_id, emails=sorted(waiting))
            }
            waiting -= joined
            if waiting:
                time.sleep(poll)
        return waiting

    # the cut --------------------------------------------------------------------------------
    def cut_exclusion(self) -> None:
        """One list for all days: remove the members not allocated ``new`` today."""
        if is_per_day(self.loaded, "exclusion") or not _day_planned(self.store, self.day):
            return
        list_id = resolve_list(self.loaded, self.store, self.client, "exclusion", self.day)
        self.report.lists["exclusion"] = list_id
        extra = self.conn.execute(
            "SELECT m.customer_id, c.email, "
            "CASE WHEN c.klaviyo_id_confirmed THEN c.klaviyo_id END FROM klaviyo_members m "
            "JOIN customers c ON c.id = m.customer_id WHERE m.list_id = ? AND m.customer_id "
            "NOT IN (SELECT customer_id FROM allocations WHERE day = ? AND provider = 'new')",
            (list_id, self.day),
        ).fetchall()
        if not extra:
            return
        ids = {int(cid): str(kid) for cid, _, kid in extra if kid}
        lacking = {str(email).lower(): int(cid) for cid, email, kid in extra if not kid}
        if lacking:
            ids.update(self.learn_ids(list_id, lacking))
        ops.remove_from_list(self.client, list_id, list(ids.values()))
        with self.store.transaction() as conn:
            conn.executemany(
                "DELETE FROM klaviyo_members WHERE list_id = ? AND customer_id = ?",
                [(list_id, int(cid)) for cid, _, _ in extra],
            )
        self.report.removed += len(ids)

    def learn_ids(self, list_id: str, lacking: dict[str, int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for member in ops.iter_members(self.client, list_id, emails=list(lacking)):
            cid = lacking.get((member.email or "").lower())
            if cid is not None:
                found[cid] = member.id
        remember_ids(self.store, found)
        self.report.ids_resolved += len(found)
        return found


def remember_ids(store: Store, ids: dict[int, str]) -> None:
    if ids:
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE customers SET klaviyo_id = ?, klaviyo_id_confirmed = 1 WHERE id = ?",
                [(kid, cid) for cid, kid in ids.items()],
            )


def _failed_index(exc: KlaviyoError) -> int | None:
    for error in exc.errors:
        match = _INDEXED_POINTER.match(error.pointer or "")
        if match:
            return int(match.group(1))
    return None


def _day_planned(store: Store, day: int) -> bool:
    # Never cut the list against a day the engine has not allocated yet: that would empty it.
    return store.conn.execute(
        "SELECT 1 FROM allocations WHERE day = ? LIMIT 1", (day,)
    ).fetchone() is not None or (
        store.conn.execute("SELECT 1 FROM days WHERE day = ?", (day,)).fetchone() is not None
    )


def drain_klaviyo(
    loaded: LoadedPlan,
    store: Store,
    day: int,
    *,
    client: KlaviyoClient | None = None,
    retry_held: bool = False,
) -> KlaviyoReport:
    """Send day ``day``'s (and earlier days' unfinished) Klaviyo rows, then cut the exclusion
    list to the day's allocation. ``retry_held`` also drives failed and on-hold rows again."""
    own = client is None
    chosen = client or client_for(loaded)
    report = KlaviyoReport(day)
    before_requests, before_throttled = chosen.stats.total(), sum(chosen.stats.throttled.values())
    try:
        with store.lock(LOCK_NAME):
            drain = _Drain(loaded, store, day, chosen, report)
            drain.drain(retry_held)
            drain.cut_exclusion()
    finally:
        if own:
            chosen.close()
    report.requests = chosen.stats.total() - before_requests
    report.throttled = sum(chosen.stats.throttled.values()) - before_throttled
    log.info(
        "day %d klaviyo: %d sent, %d already members, %d on hold, %d failed, %d removed, "
        "%d requests",
        day,
        report.sent,
        report.already_members,
        report.on_hold,
        report.failed,
        report.removed,
        report.requests,
    )
    return report


# verify and repair --------------------------------------------------------------------------
def _expected(store: Store, which: str, day: int) -> tuple[dict[str, int], int]:
    """Emails (→ customer id) that belong in the list, and how many are held back."""
    conn = store.conn
    if which == "exclusion":
        rows = conn.execute(
            "SELECT c.email, c.id, (SELECT count(*) FROM outbox o WHERE o.customer_id = c.id "
            "AND o.day = ? AND o.kind = 'webhook' AND o.provider = 'klaviyo' AND "
            "json_extract(o.payload, '$.list') = 'exclusion' AND o.status != 'sent') "
            "FROM allocations a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.day = ? AND a.provider = 'new'",
            (day, day),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT c.email, c.id, min(o.status != 'sent') FROM outbox o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'webhook' "
            "AND o.provider = 'klaviyo' AND json_extract(o.payload, '$.list') = 'unsubscribe' "
            "AND o.day <= ? GROUP BY c.id",
            (day,),
        ).fetchall()
    expected = {str(e).lower(): int(cid) for e, cid, held in rows if not held}
    return expected, sum(1 for _, _, held in rows if held)


def verify_lists(
    loaded: LoadedPlan,
    store: Store,
    day: int,
    *,
    client: KlaviyoClient | None = None,
    repair: bool = False,
) -> VerifyReport:
    """Read the day's exclusion list and the unsubscribe list back from Klaviyo and compare them
    with the store; ``repair`` adds the missing and removes the extra (never unsubscribes)."""
    own = client is None
    chosen = client or client_for(loaded)
    diffs = []
    try:
        with store.lock(LOCK_NAME):
            for which in ("exclusion", "unsubscribe"):
                diffs.append(_verify_one(loaded, store, chosen, which, day, repair))
    finally:
        if own:
            chosen.close()
    return VerifyReport(day, diffs, repaired=repair)


def _verify_one(
    loaded: LoadedPlan, store: Store, client: KlaviyoClient, which: str, day: int, repair: bool
) -> ListDiff:
    list_id = resolve_list(loaded, store, client, which, day)
    expected, held = _expected(store, which, day)
    actual = {(m.email or "").lower(): m.id for m in ops.iter_members(client, list_id)}
    by_email = dict(store.conn.execute("SELECT lower(email), id FROM customers"))
    remember_ids(store, {int(by_email[e]): pid for e, pid in actual.items() if e in by_email})
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    diff = ListDiff(which, list_id, len(expected), len(actual), missing, extra, held)
    if repair:
        if missing:
            people = [
                dict(zip(PROFILE_FIELDS, row, strict=True))
                for row in store.conn.execute(
                    f"SELECT {', '.join(PROFILE_FIELDS)} FROM customers WHERE id IN "
                    f"({','.join(str(expected[e]) for e in missing)})"
                )
            ]
            ops.import_profiles(client, people, list_id, poll=0.02 if client.scale > 1 else 0.5)
        if extra and which == "exclusion":
            ops.remove_from_list(client, list_id, [actual[e] for e in extra])
        now = now_iso()
        kept = set(expected) if which == "exclusion" else set(expected) | set(actual)
        with store.transaction() as conn:
            conn.execute("DELETE FROM klaviyo_members WHERE list_id = ?", (list_id,))
            conn.executemany(
                "INSERT OR IGNORE INTO klaviyo_members (list_id, customer_id, added_at) "
                "VALUES (?, ?, ?)",
                [(list_id, int(by_email[e]), now) for e in kept if e in by_email],
            )
    return diff


def klaviyo_backlog(store: Store, limit: int = 50) -> dict[str, Any]:
    """Klaviyo webhook rows by status, and the failed and on-hold ones with Klaviyo's message
    (for ``warmup status``)."""
    counts = {status: 0 for status in ("pending", "sending", "sent", "failed", "on_hold")}
    for status, n in store.conn.execute(
        "SELECT status, count(*) FROM outbox WHERE kind = 'webhook' AND provider = 'klaviyo' "
        "GROUP BY status"
    ):
        counts[str(status)] = int(n)
    attention = [
        {"key": key, "day": day, "email": email, "status": status, "error": error}
        for key, day, email, status, error in store.conn.execute(
            "SELECT o.key, o.day, c.email, o.status, o.last_error FROM outbox o "
            "LEFT JOIN customers c ON c.id = o.customer_id WHERE o.kind = 'webhook' "
            "AND o.provider = 'klaviyo' AND o.status IN ('failed', 'on_hold') "
            "ORDER BY o.id LIMIT ?",
            (limit,),
        )
    ]
    return {**counts, "attention": attention}


@dataclass
class SyncReport:
    drain: KlaviyoReport
    verify: VerifyReport | None
    backlog: dict[str, Any]

    @property
    def ok(self) -> bool:
        clean = not (self.backlog["failed"] or self.backlog["on_hold"])
        return clean and (self.verify is None or self.verify.ok or self.verify.repaired)

    def summary(self) -> str:
        d = self.drain
        lines = [
            f"day {d.day}: {d.sent} confirmed by Klaviyo ({d.already_members} already "
            f"members), {d.removed} removed from the exclusion list, {d.on_hold} on hold, "
            f"{d.failed} failed; {d.requests} requests, {d.throttled} throttled"
        ]
        if self.verify is not None:
            for diff in self.verify.diffs:
                state = (
                    "matches the store"
                    if diff.ok
                    else (
                        f"{len(diff.missing)} missing, {len(diff.extra)} extra"
                        + (" (repaired)" if self.verify.repaired else "")
                    )
                )
                lines.append(
                    f"{diff.which} list {diff.list_id}: {diff.actual} in Klaviyo, "
                    f"{diff.expected} expected — {state}"
                )
                for email in diff.missing[:5] + diff.extra[:5]:
                    mark = "missing" if email in diff.missing else "extra"
                    lines.append(f"  {mark}: {email}")
        for row in self.backlog["attention"]:
            lines.append(f"{row['status']}: day {row['day']} {row['email']}: {row['error']}")
        return "\n".join(lines)


def latest_day(store: Store) -> int:
    row = store.conn.execute(
        "SELECT max(d) FROM (SELECT max(day) AS d FROM days UNION ALL "
        "SELECT max(day) FROM outbox WHERE provider = 'klaviyo')"
    ).fetchone()
    if row is None or row[0] is None:
        raise InvalidInput(
            "no day has run yet, so there is nothing to sync", hint="run `warmup run PLAN` first"
        )
    return int(row[0])


def sync_plan(
    loaded: LoadedPlan, day: int | None = None, *, verify: bool = False, repair: bool = False
) -> SyncReport:
    """``warmup sync PLAN``: open the plan's store and :func:`sync`."""
    store = open_store(loaded.store_path, create=False)
    try:
        return sync(loaded, store, day, verify=verify, repair=repair)
    finally:
        store.close()


def sync(
    loaded: LoadedPlan,
    store: Store,
    day: int | None = None,
    *,
    verify: bool = False,
    repair: bool = False,
    client: KlaviyoClient | None = None,
) -> SyncReport:
    """``warmup sync``: drive every unfinished row again (failed and on-hold too), cut the
    exclusion list, then optionally read the lists back and repair them."""
    own = client is None
    chosen = client or client_for(loaded)
    try:
        target = day if day is not None else latest_day(store)
        drained = drain_klaviyo(loaded, store, target, client=chosen, retry_held=True)
        checked = (
            verify_lists(loaded, store, target, client=chosen, repair=repair)
            if verify or repair
            else None
        )
    finally:
        if own:
            chosen.close()
    return SyncReport(drained, checked, klaviyo_backlog(store))
