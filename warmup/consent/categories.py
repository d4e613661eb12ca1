"""Klaviyo lists as consent categories (seed 004: "Klaviyo does consent categories through
lists"): before each day and on ``warmup sync PLAN --pull``, each list the plan maps
(``providers.klaviyo.consent_lists``) is read and its category set in the store — members
subscribed, members who left unsubscribed, and everyone whose email or SMS consent is withdrawn
unsubscribed in every category (warmup.store.consents.apply_consent_list). A condition tests
a category as ``consent: {channel: NAME, status_in: [subscribed]}``.

A list is read whole each time (membership has no change feed in Klaviyo's API); a pull that
dies part-way changes nothing, since each category is written in one transaction after its
list has been read.
"""

from __future__ import annotations

from dataclasses import dataclass

from warmup.errors import InvalidInput, KlaviyoError
from warmup.plan import LoadedPlan
from warmup.plan.models import ConsentListRef
from warmup.providers.klaviyo.client import KlaviyoClient
from warmup.providers.klaviyo.lists import find_list, iter_members
from warmup.store import Store, consents, customers, now_iso

LIST_SOURCE = "klaviyo-list"


@dataclass(frozen=True)
class CategoryPull:
    category: str
    list_id: str
    members: int  # the list's members that are customers of the store
    subscribed: int  # rows that became subscribed in this pull
    unsubscribed: int  # … and unsubscribed

    def describe(self) -> str:
        return (
            f"consent category {self.category} (Klaviyo list {self.list_id}): "
            f"{self.members:,} customers in the list; {self.subscribed:,} subscribed, "
            f"{self.unsubscribed:,} unsubscribed by this pull"
        )


def _list_id(client: KlaviyoClient, category: str, ref: ConsentListRef) -> str:
    if ref.id is not None:
        return ref.id
    assert ref.name is not None
    found = find_list(client, ref.name)
    if found is None:
        raise InvalidInput(
            f"consent category {category}: Klaviyo has no list named {ref.name!r}",
            hint="check the name in Klaviyo (Audience → Lists & segments), or give the list's "
            f"id under `providers.klaviyo.consent_lists.{category}`",
        )
    return found


def pull_consent_lists(
    loaded: LoadedPlan, store: Store, client: KlaviyoClient
) -> list[CategoryPull]:
    """Each mapped list read from Klaviyo and its category written to the store."""
    done = []
    for category, ref in loaded.plan.providers.klaviyo.consent_lists.items():
        list_id = _list_id(client, category, ref)
        members: set[int] = set()
        try:
            for member in iter_members(client, list_id):
                if not member.email:
                    continue
                customer_id = customers.id_for_email(store.backend, member.email.strip().lower())
                if customer_id is not None:
                    members.add(customer_id)
        except KlaviyoError as exc:
            if exc.status != 404:
                raise
            raise InvalidInput(
                f"consent category {category}: Klaviyo has no list with id {list_id!r}",
                hint="check the id in Klaviyo (the list's settings), or give its name under "
                f"`providers.klaviyo.consent_lists.{category}`",
            ) from exc
        with store.backend.transaction():
            counts = consents.apply_consent_list(
                store.backend, category, members, changed_at=now_iso(), source=LIST_SOURCE
            )
        done.append(
            CategoryPull(
                category,
                list_id,
                len(members),
                counts[consents.SUBSCRIBED],
                counts[consents.UNSUBSCRIBED],
            )
        )
    return done


def pull_consent_lists_for_plan(loaded: LoadedPlan) -> list[CategoryPull]:
    """The plan's consent lists pulled with its own store and client (nothing to do, and no
    Klaviyo call, when it maps none)."""
    if not loaded.plan.providers.klaviyo.consent_lists:
        return []
    from warmup.dispatch.klaviyo import client_for
    from warmup.store import open_store

    store = open_store(loaded.store_path, create=False)
    try:
        with client_for(loaded) as client:
            return pull_consent_lists(loaded, store, client)
    finally:
        store.close()
