"""Drain the engine's Klaviyo webhook rows and keep the plan's Klaviyo lists exact.

Guarantees, per day N:
- a webhook row becomes ``sent`` only once the customer's email is read back from the list
  (a 204, a 202 or a finished import job is an acknowledgement, not proof); so the customer's
  email row (``after_key``) waits until Klaviyo holds them. Whoever is not seen joins again by
  email (``join_by_email``, as ``sync --repair``) and is read back once more, else ``on_hold``;
- list imports carry the email alone: another profile's phone or external id cannot move anyone;
- a per-profile error (read by its pointer index) puts that row ``on_hold`` with Klaviyo's
  message and the rest of the batch goes on; a call that keeps failing leaves its rows
  ``failed``: nothing is dropped silently, ``klaviyo_backlog`` lists them, ``sync`` retries;
- a single exclusion list keeps each day's members until that day has ended (plan timezone plus
  ``exclusion_margin_hours``), then is cut back; only members warmup added are ever removed.
Every Klaviyo call is idempotent (list adds/removes, imports keyed by email), so a killed run is
simply run again: rows left ``sending`` are sent once more and read back, nothing twice in effect.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from warmup.dispatch import claims
from warmup.errors import InvalidInput, KlaviyoError, ProviderError, Refused, WarmupError
from warmup.plan import LoadedPlan
from warmup.plan.models import ListRef
from warmup.providers.klaviyo import KlaviyoClient, endpoint_for
from warmup.providers.klaviyo import lists as ops
from warmup.providers.klaviyo.request import webhook_request
from warmup.store import Store, now_iso, open_store

log = logging.getLogger(__name__)
LOCK_NAME = "dispatch-klaviyo"
ADD_TEMPLATE = "klaviyo/add-profiles-to-list.json.j2"
UNSUBSCRIBE_TEMPLATE = "klaviyo/unsubscribe-profiles.json.j2"
SUBSCRIBE_PATH = "/api/profile-subscription-bulk-create-jobs"
PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")
_INDEXED_POINTER = re.compile(r"^/data/(?:attributes/profiles/data/)?(\d+)(?:/|$)")
_DEAD_ID = re.compile(r"profile with id (\S+) does not exist")
NOT_IN_LIST = "not in the list after sync (read back from Klaviyo)"
# Rows drained (sent, then read back) per page: a multiple of the read-back's 100 emails a
# request and of the usual batch sizes, so whole pages cost no extra request.
DRAIN_PAGE = 10_000


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
    # Read back from Klaviyo before any row counted as sent: list pages read, and the calls
    # that joined unseen customers again by email.
    requests_readback: int = 0
    requests_repair: int = 0
    dead_ids: int = 0
    # Set when the day has not begun in the plan's timezone: no list was touched.
    come_back_at: str | None = None
    # failed rows of the day and earlier after this run, its own included (a second run of the
    # day leaves earlier failures alone: they are `warmup sync`'s)
    failed_outstanding: int = 0
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
    # extra members warmup did not add: never removed
    foreign: int = 0

    @property
    def ok(self) -> bool:
        # members someone else put in the list are reported, never removed, not a failure
        return not self.missing and len(self.extra) == self.foreign


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
        k.base_url,
        k.api_key_env,
        env=loaded.env,
        revision=k.revision,
        rate_share=k.rate_share,
        **kwargs,
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
    loaded: LoadedPlan,
    store: Store,
    client: KlaviyoClient,
    which: str,
    day: int,
    *,
    take_over: bool = False,
) -> str:
    """The Klaviyo list id for ``which`` ('exclusion' | 'unsubscribe') on ``day``; names are
    found or created once and remembered in the store. Refuses (exit 3) a list another plan's
    store has claimed, unless ``take_over``: every caller goes on to write to the list."""
    list_id = _resolve_list(loaded, store, client, which, day)
    claims.check(list_id, loaded.plan.name, store.path, take_over=take_over)
    return list_id


def check_list_claims(
    loaded: LoadedPlan, store: Store, day: int, *, take_over: bool = False
) -> None:
    """Before a day runs: refuse now, before anything is written, if a list the day will write
    to belongs to another plan. Klaviyo out of reach is left for the dispatch to report."""
    try:
        with closing(client_for(loaded)) as client:
            for which in ("exclusion", "unsubscribe"):
                resolve_list(loaded, store, client, which, day, take_over=take_over)
    except Refused:
        raise
    except WarmupError as exc:
        log.info("list claims not checked before the run: %s", exc)


def _resolve_list(
    loaded: LoadedPlan, store: Store, client: KlaviyoClient, which: str, day: int
) -> str:
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
        self.now = datetime.now(UTC)
        self.which: str | None = None
        # Acknowledged by Klaviyo (204, job complete) but not yet read back, per list.
        self.acked: dict[str, list[_Row]] = defaultdict(list)
        self.verified: set[int] = set()
        # Klaviyo's own reason a row's profile could not join (import errors by pointer).
        self.reasons: dict[int, str] = {}
        # --claim: take over a list another plan's store has claimed
        self.take_over = False
        # each list's members before this run (``skip_confirmed``)
        self.members: dict[str, set[int]] = {}

    # outbox rows ----------------------------------------------------------------------------
    def rows(self, retry_held: bool, after: int = 0, limit: int = -1) -> list[_Row]:
        """The drainable rows with an id above ``after``, in id order, at most ``limit``."""
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
            "AND o.id > ? ORDER BY o.id LIMIT ?",
            (self.day, *statuses, after, limit),
        ):
            profile = dict(zip(PROFILE_FIELDS, row[4:], strict=True))
            payload = payloads.get(row[3])
            if payload is None:
                payload = payloads[row[3]] = json.loads(row[3])
            if payload.get("list"):
                # Identity is email: a list needs only the email's profile, and another
                # profile's phone or external id in an import would move that profile instead.
                profile.update(phone=None, external_id=None)
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
    def drain(self, retry_held: bool, only: str | None = None) -> None:
        """Every drainable row once, a page at a time: a day's rows (85,000 on the last day of
        a 100k warm-up) are never all in memory. The cursor is the row id, so a row this run
        marked ``sending`` or ``failed`` is not read again."""
        after = 0
        while page := self.rows(retry_held, after, DRAIN_PAGE):
            after = page[-1].id
            self.drain_page(page, only)

    def drain_page(self, page: list[_Row], only: str | None) -> None:
        groups: dict[tuple[str | None, str, int], list[_Row]] = defaultdict(list)
        for row in page:
            which = row.payload.get("list")
            if only is not None and which != only:
                continue
            list_day = row.day if which and is_per_day(self.loaded, which) else 0
            groups[(which, row.payload.get("template", ADD_TEMPLATE), list_day)].append(row)
        for (which, template, list_day), rows in groups.items():
            list_id = None
            if which:
                list_id = resolve_list(
                    self.loaded,
                    self.store,
                    self.client,
                    which,
                    list_day or self.day,
                    take_over=self.take_over,
                )
                self.report.lists[which] = list_id
            self.which = which
            members = self.skip_confirmed(template, list_id, rows)
            known = {m.id for m in members}
            rows = [r for r in rows if r.id not in known]
            batch = max(int(r.payload.get("batch_size", 1)) for r in rows) if rows else 1
            with_id = [r for r in rows if r.profile["klaviyo_id"]]
            without_id = [r for r in rows if not r.profile["klaviyo_id"]]
            for part in (with_id, without_id):
                self.send_all(template, which, list_id, part, batch)
            if list_id:
                waiting = [*members, *self.acked.pop(list_id, [])]
                try:
                    self.confirm(list_id, waiting)
                except KlaviyoError as exc:
                    if exc.status != 404:
                        raise
                    # the list itself is gone (deleted in Klaviyo): nobody can be read back
                    # from it, so nobody counts as excluded; `sync --resolve-lists` recovers
                    self.mark(
                        [r for r in waiting if r.id not in self.verified], "failed", exc.message
                    )
                    self.report.problems.append(f"{exc.message} (list deleted in Klaviyo?)")

    def skip_confirmed(self, template: str, list_id: str | None, rows: list[_Row]) -> list[_Row]:
        """Customers seen in the list before cost no write call (yesterday's ones); they are
        read back like everyone else before their row counts as sent."""
        if not list_id or template != ADD_TEMPLATE or self.mode() != "force_add":
            return []
        # read once per list and run, not once per page (the members added since are this
        # run's own rows, which come once)
        members = self.members.get(list_id)
        if members is None:
            members = self.members[list_id] = {
                int(c)
                for (c,) in self.conn.execute(
                    "SELECT customer_id FROM klaviyo_members WHERE list_id = ?", (list_id,)
                )
            }
        known = [r for r in rows if r.customer_id in members]
        self.report.already_members += len(known)
        return known

    def mode(self) -> str:
        # Consent is one-way: joining the unsubscribe list never goes through a subscription
        # job, whatever list_mode says (it would make an unsubscribed person SUBSCRIBED).
        return "force_add" if self.which == "unsubscribe" else self.settings.list_mode

    # verification ---------------------------------------------------------------------------
    def confirm(self, list_id: str, rows: list[_Row]) -> None:
        """Mark rows sent only once their email is read back as a member of the list; the rest
        join again by email, one import for all of them, and are read back once more."""
        rows = [r for r in rows if r.id not in self.verified]
        missing = verify_members(self, list_id, rows)
        if not missing:
            return
        again = [r for r in missing if r.id not in self.reasons]
        if again:
            outcome = join_by_email(self.client, [r.profile for r in again], list_id)
            self.report.requests_repair += outcome.calls
            for row in again:
                email = (row.profile["email"] or "").lower()
                if email in outcome.errors:
                    self.reasons[row.id] = f"Klaviyo: {outcome.errors[email]}"
            missing = verify_members(self, list_id, [r for r in again if r.id not in self.reasons])
            missing += [r for r in rows if r.id in self.reasons and r not in missing]
        for row in missing:
            self.mark(
                [row],
                "on_hold",
                self.reasons.get(row.id, NOT_IN_LIST),
            )

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
        return webhook_request(
            self.loaded,
            template,
            [r.profile for r in rows],
            which=self.which,
            list_id=list_id,
            list_mode=self.mode(),
            day=self.day,
            extra=extra,
        )

    def send_chunk(
        self, envelope: dict[str, Any], which: str | None, list_id: str | None, chunk: list[_Row]
    ) -> list[_Row] | None:
        """Send one batch. Returns the rows to send again (a per-profile 400 took one out).
        What Klaviyo acknowledged waits in ``acked`` for the read-back (``confirm``)."""
        try:
            response = self.client.call(
                envelope["method"], envelope["path"], json=envelope.get("body")
            )
            refused: dict[int, str] = {}
            if response.content:
                data = response.json().get("data") or {}
                if isinstance(data, dict) and data.get("type") == "profile-bulk-import-job":
                    outcome = ops.wait_for_import(
                        self.client, str(data["id"]), poll=0.02 if self.client.scale > 1 else 0.5
                    )
                    refused = outcome.for_rows([r.profile["email"] for r in chunk])
            unconfirmed: set[str] | None = None
            if envelope["path"].rstrip("/") == SUBSCRIBE_PATH and list_id:
                unconfirmed = self.await_subscriptions(list_id, chunk)
            if which == "unsubscribe":
                for held, reason in self.lower_consent(chunk).items():
                    refused.setdefault(held, reason)
        except KlaviyoError as exc:
            if exc.status in (401, 403):
                self.mark(chunk, "pending")
                raise  # a wrong key or scope fails every call alike: stop, hold nothing
            if exc.status >= 500 or exc.status == 429:
                self.mark(chunk, "failed", exc.message)
                self.report.problems.append(exc.message)
                return None
            if exc.status == 404 and list_id and chunk[0].profile["klaviyo_id"]:
                return self.dead_id(exc, list_id, chunk)
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
        for index, reason in refused.items():
            # Not in the list, and a new import will not change Klaviyo's mind: hold it.
            self.mark([chunk[index]], "on_hold", f"Klaviyo: {reason}")
        good = [r for i, r in enumerate(chunk) if i not in refused]
        if not list_id:
            self.mark(good, "sent")
            return None
        if unconfirmed is not None:
            # the subscription wait read these back from the list already
            seen = [r for r in good if (r.profile["email"] or "").lower() not in unconfirmed]
            self.mark(seen, "sent", list_id=list_id)
            self.verified.update(r.id for r in seen)
            good = [r for r in good if r not in seen]
        self.acked[list_id].extend(good)
        return None

    def lower_consent(self, chunk: list[_Row]) -> dict[int, str]:
        """Unsubscribe in Klaviyo (globally: no list, so nobody stays subscribed anywhere) the
        unsubscribed people whose consent warmup raised itself — a subscription job put them on
        the exclusion list under ``list_mode: subscribe`` — or everyone with
        ``unsubscribe_via_api``; then read their subscriptions back. Returns the chunk's indexes
        still able to receive marketing, with the reason."""
        raised = self.raised_consent([r.customer_id for r in chunk])
        targets = [r for r in chunk if self.settings.unsubscribe_via_api or r.customer_id in raised]
        if not targets:
            return {}
        for part in ops.chunks(targets, ops.MAX_UNSUBSCRIBE):
            unsub = self.render(UNSUBSCRIBE_TEMPLATE, None, list(part))
            self.client.call(unsub["method"], unsub["path"], json=unsub["body"])
        waiting = {(r.profile["email"] or "").lower() for r in targets}
        poll = 0.02 if self.client.scale > 1 else 0.5
        deadline = time.monotonic() + (10 if self.client.scale > 1 else 120)
        while waiting:
            before = self.client.stats.total()
            state = ops.email_marketing(self.client, sorted(waiting))
            self.report.requests_readback += self.client.stats.total() - before
            waiting = {
                e
                for e in waiting
                if (state.get(e) or {}).get("can_receive_email_marketing")
                or (state.get(e) or {}).get("consent") == "SUBSCRIBED"
            }
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        return {
            i: "still subscribed in Klaviyo after the unsubscribe job (read back)"
            for i, r in enumerate(chunk)
            if (r.profile["email"] or "").lower() in waiting
        }

    def raised_consent(self, customers: list[int]) -> set[int]:
        # under subscribe mode an exclusion joined through a subscription job: SUBSCRIBED
        if self.settings.list_mode != "subscribe" or not customers:
            return set()
        marks = ",".join("?" for _ in customers)
        return {
            int(c)
            for (c,) in self.conn.execute(
                "SELECT DISTINCT customer_id FROM outbox WHERE kind = 'webhook' "
                "AND provider = 'klaviyo' AND status = 'sent' AND "
                f"json_extract(payload, '$.list') = 'exclusion' AND customer_id IN ({marks})",
                customers,
            )
        }

    def dead_id(self, exc: KlaviyoError, list_id: str, chunk: list[_Row]) -> list[_Row] | None:
        """A strict Klaviyo 404s a whole batch for one unknown id: that person joins by email
        (after the read-back), the rest of the batch is sent again."""
        dead = {m.group(1) for e in exc.errors if (m := _DEAD_ID.search(e.detail or ""))}
        gone = [r for r in chunk if r.profile["klaviyo_id"] in dead] or chunk
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE customers SET klaviyo_id_confirmed = 0 WHERE id = ?",
                [(r.customer_id,) for r in gone],
            )
        self.report.dead_ids += len(gone)
        self.acked[list_id].extend(gone)
        rest = [r for r in chunk if r not in gone]
        return rest or None

    def await_subscriptions(self, list_id: str, chunk: list[_Row]) -> set[str]:
        """Subscription jobs cannot be polled (no GET): confirm by reading the list for the
        batch's emails until all joined. Stragglers are returned as not yet confirmed."""
        waiting = {(r.profile["email"] or "").lower() for r in chunk}
        poll = 0.02 if self.client.scale > 1 else 0.5
        deadline = time.monotonic() + (10 if self.client.scale > 1 else 120)
        while waiting and time.monotonic() < deadline:
            before = self.client.stats.total()
            joined = {
                (m.email or "").lower()
                for m in ops.iter_members(self.client, list_id, emails=sorted(waiting))
            }
            # the subscription wait is this mode's read-back: counted with the others
            self.report.requests_readback += self.client.stats.total() - before
            waiting -= joined
            if waiting:
                time.sleep(poll)
        return waiting

    # the cut --------------------------------------------------------------------------------
    def cut_exclusion(self) -> None:
        """One list for all days: remove the members not allocated ``new`` today."""
        if is_per_day(self.loaded, "exclusion") or not _day_planned(self.store, self.day):
            return
        list_id = resolve_list(
            self.loaded, self.store, self.client, "exclusion", self.day, take_over=self.take_over
        )
        self.report.lists["exclusion"] = list_id
        owning = owning_days(self.loaded, self.store, self.day, self.now)
        marks = ",".join("?" for _ in owning)
        # Only members warmup added (klaviyo_members) are ever removed, and only once every day
        # that put them there is over: Klaviyo's own campaign may still send that day.
        extra = self.conn.execute(
            "SELECT m.customer_id, c.email, "
            "CASE WHEN c.klaviyo_id_confirmed THEN c.klaviyo_id END FROM klaviyo_members m "
            "JOIN customers c ON c.id = m.customer_id WHERE m.list_id = ? AND m.customer_id "
            f"NOT IN (SELECT customer_id FROM allocations WHERE day IN ({marks}) "
            "AND provider = 'new')",
            (list_id, *owning),
        ).fetchall()
        # another plan that claimed this list may have added the same people: they stay
        theirs = claims.others_members(list_id, self.store.path)
        extra = [(cid, email, kid) for cid, email, kid in extra if str(email).lower() not in theirs]
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


def day_bounds(loaded: LoadedPlan, store: Store, day: int) -> tuple[datetime, datetime]:
    """When day ``day`` begins and when its exclusions may go (its end in the plan's timezone
    plus ``exclusion_margin_hours``), in UTC."""
    zone = ZoneInfo(loaded.plan.timezone)
    start = datetime.combine(date.fromisoformat(day_date(loaded, store, day)), dt_time(), zone)
    margin = timedelta(hours=loaded.plan.providers.klaviyo.exclusion_margin_hours)
    return start.astimezone(UTC), (start + timedelta(days=1) + margin).astimezone(UTC)


def not_begun(loaded: LoadedPlan, store: Store, day: int, now: datetime | None) -> datetime | None:
    """When day ``day`` begins, if it has not begun yet at ``now`` (default: the clock)."""
    begins = day_bounds(loaded, store, day)[0]
    return begins if (now or datetime.now(UTC)) < begins else None


def owning_days(loaded: LoadedPlan, store: Store, day: int, now: datetime) -> list[int]:
    """The latest day run so far (``day`` or a later one) and every earlier day not yet over
    (end + margin): their exclusions stay. Measured from the latest day, not from ``day``, so that
    re-running an earlier, completed day never strips a later day's recipients from the list."""
    (latest,) = store.conn.execute("SELECT MAX(day) FROM days").fetchone()
    latest = max(day, int(latest or 0))
    days = [int(d) for (d,) in store.conn.execute("SELECT day FROM days WHERE day < ?", (latest,))]
    return [latest, *(d for d in days if day_bounds(loaded, store, d)[1] > now)]


def remember_ids(store: Store, ids: dict[int, str]) -> None:
    if ids:
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE customers SET klaviyo_id = ?, klaviyo_id_confirmed = 1 WHERE id = ?",
                [(kid, cid) for cid, kid in ids.items()],
            )


def verify_members(drain: _Drain, list_id: str, rows: list[_Row]) -> list[_Row]:
    """Read the rows' emails back from the list, 100 a page on the client's workers; each
    page's members are marked sent as it arrives, so their email can go while later pages are
    read. Returns the rows not seen."""
    by_email: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_email[(row.profile["email"] or "").lower()].append(row)
    batches = [list(b) for b in ops.chunks(sorted(by_email), ops.PAGE)]

    def read(batch: list[str]) -> list[ops.Member]:
        return list(ops.iter_members(drain.client, list_id, emails=batch))

    seen: set[str] = set()
    workers = max(1, min(drain.client.workers, len(batches)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for members in pool.map(read, batches):
            drain.report.requests_readback += 1
            found = {(m.email or "").lower(): m.id for m in members}
            page_rows = [r for e in found if e in by_email for r in by_email[e]]
            drain.mark(page_rows, "sent", list_id=list_id)
            drain.verified.update(r.id for r in page_rows)
            remember_ids(
                drain.store, {r.customer_id: found[e] for e in found for r in by_email.get(e, [])}
            )
            seen.update(found)
    return [r for r in rows if (r.profile["email"] or "").lower() not in seen]


def join_by_email(
    client: KlaviyoClient, people: list[dict[str, Any]], list_id: str
) -> ops.JobOutcome:
    """Join a list through a bulk import keyed by email alone: no phone or external id that
    could match (and move) another profile. What verify-before-send and ``sync --repair`` use."""
    only_email = [{**p, "phone": None, "external_id": None} for p in people]
    return ops.import_profiles(client, only_email, list_id, poll=0.02 if client.scale > 1 else 0.5)


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
    now: datetime | None = None,
    claim: bool = False,
) -> KlaviyoReport:
    """Send day ``day``'s (and earlier days' unfinished) Klaviyo rows, read them back, then cut
    the exclusion list to the days that still own it. ``retry_held`` also drives failed and
    on-hold rows again. Before ``day`` has begun in the plan's timezone no list is touched."""
    report = KlaviyoReport(day)
    moment = now or datetime.now(UTC)
    begins = not_begun(loaded, store, day, moment)
    if begins is not None:
        report.come_back_at = begins.isoformat()
        report.problems.append(
            f"day {day} begins {begins.astimezone(ZoneInfo(loaded.plan.timezone)).isoformat()}: "
            "the exclusion list was not changed; run it again then"
        )
    own = client is None
    chosen = client or client_for(loaded)
    before_requests, before_throttled = chosen.stats.total(), sum(chosen.stats.throttled.values())
    try:
        with store.lock(LOCK_NAME):
            drain = _Drain(loaded, store, day, chosen, report)
            drain.now = moment
            drain.take_over = claim
            if begins is None:
                drain.drain(retry_held)
                try:
                    drain.cut_exclusion()
                except KlaviyoError as exc:
                    if exc.status != 404:
                        raise
                    report.problems.append(f"{exc.message} (list deleted in Klaviyo?)")
            else:
                # an unsubscribe is never deferred; the day's exclusions wait for its date
                drain.drain(retry_held, only="unsubscribe")
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
def _expected(
    store: Store, which: str, day: int, owning: list[int] | None = None
) -> tuple[dict[str, int], int]:
    """Emails (→ customer id) that belong in the list, and how many are held back."""
    conn = store.conn
    if which == "exclusion":
        days = owning or [day]
        marks = ",".join("?" for _ in days)
        rows = conn.execute(
            "SELECT c.email, c.id, min((SELECT count(*) FROM outbox o WHERE o.customer_id = c.id "
            "AND o.day = a.day AND o.kind = 'webhook' AND o.provider = 'klaviyo' AND "
            "json_extract(o.payload, '$.list') = 'exclusion' AND o.status != 'sent')) "
            "FROM allocations a JOIN customers c ON c.id = a.customer_id "
            f"WHERE a.day IN ({marks}) AND a.provider = 'new' GROUP BY c.id",
            days,
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
    claim: bool = False,
    now: datetime | None = None,
) -> VerifyReport:
    """Read the day's exclusion list and the unsubscribe list back from Klaviyo and compare them
    with the store; ``repair`` adds the missing and removes the extra (never unsubscribes)."""
    own = client is None
    chosen = client or client_for(loaded)
    diffs = []
    try:
        with store.lock(LOCK_NAME):
            for which in ("exclusion", "unsubscribe"):
                diffs.append(
                    _verify_one(loaded, store, chosen, which, day, repair, now, claim=claim)
                )
    finally:
        if own:
            chosen.close()
    return VerifyReport(day, diffs, repaired=repair)


def _verify_one(
    loaded: LoadedPlan,
    store: Store,
    client: KlaviyoClient,
    which: str,
    day: int,
    repair: bool,
    now: datetime | None = None,
    *,
    claim: bool = False,
) -> ListDiff:
    list_id = resolve_list(loaded, store, client, which, day, take_over=claim)
    owning = (
        owning_days(loaded, store, day, now or datetime.now(UTC))
        if which == "exclusion" and not is_per_day(loaded, which)
        else None
    )
    expected, held = _expected(store, which, day, owning)
    actual = {(m.email or "").lower(): m.id for m in ops.iter_members(client, list_id)}
    by_email = dict(store.conn.execute("SELECT lower(email), id FROM customers"))
    remember_ids(store, {int(by_email[e]): pid for e, pid in actual.items() if e in by_email})
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    ours = {
        int(c)
        for (c,) in store.conn.execute(
            "SELECT customer_id FROM klaviyo_members WHERE list_id = ?", (list_id,)
        )
    }
    # Never remove a member warmup did not add: another plan's, or someone's own.
    theirs = claims.others_members(list_id, store.path)
    removable = [e for e in extra if e in by_email and int(by_email[e]) in ours and e not in theirs]
    diff = ListDiff(
        which,
        list_id,
        len(expected),
        len(actual),
        missing,
        extra,
        held,
        len(extra) - len(removable),
    )
    if repair:
        if missing:
            people = [
                dict(zip(PROFILE_FIELDS, row, strict=True))
                for row in store.conn.execute(
                    f"SELECT {', '.join(PROFILE_FIELDS)} FROM customers WHERE id IN "
                    f"({','.join(str(expected[e]) for e in missing)})"
                )
            ]
            join_by_email(client, people, list_id)
        if removable and which == "exclusion":
            ops.remove_from_list(client, list_id, [actual[e] for e in removable])
        now_text = now_iso()
        kept = set(expected) if which == "exclusion" else set(expected) | set(actual)
        with store.transaction() as conn:
            conn.execute("DELETE FROM klaviyo_members WHERE list_id = ?", (list_id,))
            conn.executemany(
                "INSERT OR IGNORE INTO klaviyo_members (list_id, customer_id, added_at) "
                "VALUES (?, ?, ?)",
                [(list_id, int(by_email[e]), now_text) for e in kept if e in by_email],
            )
    return diff


def failed_list_changes(store: Store, day: int) -> int:
    """Klaviyo rows of ``day`` and earlier still ``failed``: a run does not drive them again
    (`warmup sync` does), and the email waiting for them cannot go until it has."""
    (n,) = store.conn.execute(
        "SELECT count(*) FROM outbox WHERE kind = 'webhook' AND provider = 'klaviyo' "
        "AND status = 'failed' AND day <= ?",
        (day,),
    ).fetchone()
    return int(n)


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
    held_by_reason = {
        str(reason): int(n)
        for reason, n in store.conn.execute(
            "SELECT coalesce(last_error, 'no reason recorded'), count(*) FROM outbox "
            "WHERE kind = 'webhook' AND provider = 'klaviyo' AND status = 'on_hold' "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    }
    return {**counts, "attention": attention, "held_by_reason": held_by_reason}


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
                        f"{len(diff.missing)} missing, {len(diff.extra) - diff.foreign} extra"
                        + (" (repaired)" if self.verify.repaired else "")
                    )
                )
                lines.append(
                    f"{diff.which} list {diff.list_id}: {diff.actual} in Klaviyo, "
                    f"{diff.expected} expected — {state}"
                    + (
                        f"; {diff.foreign} member(s) warmup did not add, left alone"
                        if diff.foreign
                        else ""
                    )
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
    loaded: LoadedPlan,
    day: int | None = None,
    *,
    verify: bool = False,
    repair: bool = False,
    claim: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    """``warmup sync PLAN``: open the plan's store and :func:`sync`."""
    store = open_store(loaded.store_path, create=False)
    try:
        return sync(loaded, store, day, verify=verify, repair=repair, claim=claim, now=now)
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
    claim: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    """``warmup sync``: drive every unfinished row again (failed and on-hold too), cut the
    exclusion list, then optionally read the lists back and repair them."""
    own = client is None
    chosen = client or client_for(loaded)
    try:
        target = day if day is not None else latest_day(store)
        drained = drain_klaviyo(
            loaded, store, target, client=chosen, retry_held=True, claim=claim, now=now
        )
        checked = (
            verify_lists(loaded, store, target, client=chosen, repair=repair, claim=claim, now=now)
            if verify or repair
            else None
        )
    finally:
        if own:
            chosen.close()
    return SyncReport(drained, checked, klaviyo_backlog(store))
