"""Cutting the single exclusion list back: members warmup added leave it once every day that
put them there is over (a per-day list is never cut). Members another plan added stay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from warmup.dispatch import claims
from warmup.dispatch.klaviyo.resolve import is_per_day, resolve_list
from warmup.dispatch.klaviyo.window import owning_days
from warmup.providers.klaviyo import lists as ops

if TYPE_CHECKING:
    from warmup.dispatch.klaviyo.drain import ListChangeDrain


def cut_exclusion(drain: ListChangeDrain) -> None:
    """One list for all days: remove the members not allocated ``new`` today."""
    # Never cut the list against a day the engine has not allocated yet: that would empty it.
    if is_per_day(drain.loaded, "exclusion") or not drain.lists.day_planned(drain.day):
        return
    list_id = resolve_list(
        drain.loaded, drain.store, drain.client, "exclusion", drain.day, take_over=drain.take_over
    )
    drain.report.lists["exclusion"] = list_id
    owning = owning_days(drain.loaded, drain.store, drain.day, drain.now)
    # Only members warmup added (klaviyo_members) are ever removed, and only once every day
    # that put them there is over: Klaviyo's own campaign may still send that day.
    extra = drain.lists.members_not_allocated(list_id, owning)
    # another plan that claimed this list may have added the same people: they stay
    theirs = claims.others_members(list_id, drain.store.path)
    extra = [(cid, email, kid) for cid, email, kid in extra if email.lower() not in theirs]
    if not extra:
        return
    ids = {cid: kid for cid, _, kid in extra if kid}
    lacking = {email.lower(): cid for cid, email, kid in extra if not kid}
    if lacking:
        ids.update(learn_ids(drain, list_id, lacking))
    ops.remove_from_list(drain.client, list_id, list(ids.values()))
    drain.lists.remove_members(list_id, [cid for cid, _, _ in extra])
    drain.report.removed += len(ids)


def learn_ids(drain: ListChangeDrain, list_id: str, lacking: dict[str, int]) -> dict[int, str]:
    """The Klaviyo ids of members known only by email, read from the list (and remembered)."""
    found: dict[int, str] = {}
    for member in ops.iter_members(drain.client, list_id, emails=list(lacking)):
        cid = lacking.get((member.email or "").lower())
        if cid is not None:
            found[cid] = member.id
    drain.lists.confirm_ids(found)
    drain.report.ids_resolved += len(found)
    return found
