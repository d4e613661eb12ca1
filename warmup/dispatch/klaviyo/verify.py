"""Reading the exclusion and unsubscribe lists back from Klaviyo and comparing them with the
store; a repair imports the missing by email and removes the extra warmup added (it never
unsubscribes anyone, and never removes a member warmup did not add)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from warmup.dispatch import claims
from warmup.dispatch.klaviyo.drain import LOCK_NAME
from warmup.dispatch.klaviyo.readback import join_by_email
from warmup.dispatch.klaviyo.resolve import client_for, is_per_day, resolve_list
from warmup.dispatch.klaviyo.window import owning_days
from warmup.plan import LoadedPlan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo import lists as ops
from warmup.store import Store
from warmup.store.lists import KlaviyoLists
from warmup.store.outbox import Outbox


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


def _expected(
    store: Store, which: str, day: int, owning: list[int] | None = None
) -> tuple[dict[str, int], int]:
    """Emails (→ customer id) that belong in the list, and how many are held back."""
    outbox = Outbox(store)
    if which == "exclusion":
        rows = outbox.expected_in_exclusion(owning or [day])
    else:
        rows = outbox.expected_in_unsubscribe(day)
    expected = {email.lower(): cid for email, cid, held in rows if not held}
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
    lists = KlaviyoLists(store)
    list_id = resolve_list(loaded, store, client, which, day, take_over=claim)
    owning = (
        owning_days(loaded, store, day, now or datetime.now(UTC))
        if which == "exclusion" and not is_per_day(loaded, which)
        else None
    )
    expected, held = _expected(store, which, day, owning)
    actual = {(m.email or "").lower(): m.id for m in ops.iter_members(client, list_id)}
    by_email = lists.customer_ids_by_email()
    lists.confirm_ids({by_email[e]: pid for e, pid in actual.items() if e in by_email})
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    ours = lists.members(list_id)
    # Never remove a member warmup did not add: another plan's, or someone's own.
    theirs = claims.others_members(list_id, store.path)
    removable = [e for e in extra if e in by_email and by_email[e] in ours and e not in theirs]
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
            join_by_email(client, lists.profiles([expected[e] for e in missing]), list_id)
        if removable and which == "exclusion":
            ops.remove_from_list(client, list_id, [actual[e] for e in removable])
        kept = set(expected) if which == "exclusion" else set(expected) | set(actual)
        lists.replace_members(list_id, [by_email[e] for e in kept if e in by_email])
    return diff
