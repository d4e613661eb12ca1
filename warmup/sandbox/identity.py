"""How Klaviyo treats identities and addresses, modelled as adversarially as Klaviyo does it.

- Addresses: Klaviyo refuses dots at the edges of the local part or two in a row, control and
  bidirectional-override characters; a strict account also refuses non-ASCII local parts.
- Import errors: ``source.pointer`` indexes the job's payload
  (``/data/attributes/profiles/data/N/...``) and ``original_payload`` comes in two shapes (the
  profile's attributes, or the whole profile resource), alternating so readers meet both.
- Another client: with ``meddle`` > 0, each list add may be followed by someone else removing
  one member of that list or changing a member's email, the way a team mate or an integration
  edits the account while a run is going on.

Profile matching by phone number and external id lives in ``Account.upsert_profile``: an import
whose email is new but whose phone belongs to a profile updates that profile's email.
"""

from __future__ import annotations

import re
from typing import Any

_REFUSED = re.compile(
    r"\.\.|^\.|\.@|[\x00-\x1f\x7f\x80-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


def email_refused(email: str, *, strict: bool) -> bool:
    """True when Klaviyo answers "Invalid email address" to an address of the right shape."""
    if _REFUSED.search(email):
        return True
    return strict and not email.partition("@")[0].isascii()


def error_payload(item: dict[str, Any], index: int) -> dict[str, Any] | None:
    """``original_payload`` of an import error: the OpenAPI document leaves it untyped and
    Klaviyo has sent both the attributes and the whole resource; alternate between them."""
    if index % 2:
        return {"type": "profile", "attributes": item.get("attributes")}
    attributes = item.get("attributes")
    return attributes if isinstance(attributes, dict) else None


def import_pointer(index: int, relative: str) -> str:
    return f"/data/attributes/profiles/data/{index}{relative}"


def meddle(account: Any, list_id: str) -> None:
    """Another client's edit after a list add: drop one member or change one member's email."""
    if account.meddle <= 0 or account.meddle_left == 0:
        return
    if account.rng.random() >= account.meddle:
        return
    if account.meddle_left is not None:
        account.meddle_left -= 1
    members = account.members.get(list_id)
    if members is None or not members.seq_of:
        return
    victim = account.rng.choice(sorted(members.seq_of))
    account.meddled.append(victim)
    if account.rng.random() < 0.5:
        members.remove(victim)
        return
    profile = account.profiles[victim]
    email = profile["attributes"].get("email")
    if email:
        account._apply(profile, {"email": "changed-" + email})
