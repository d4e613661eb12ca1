"""Which Klaviyo list a list change goes to: the plan names a list by id, per day, or by name
(found or created once, then remembered in the store), and a list another plan's store has
claimed is refused before anything is written to it."""

from __future__ import annotations

import logging
from contextlib import closing
from typing import Any

from warmup.dispatch import claims
from warmup.dispatch.klaviyo.window import list_date
from warmup.errors import InvalidInput, Refused, WarmupError
from warmup.plan import LoadedPlan
from warmup.plan.models import ListRef
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo import lists as ops
from warmup.store import Store
from warmup.store.lists import KlaviyoLists

log = logging.getLogger(__name__)


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
    name = ref.name.replace("{day}", str(day)).replace("{date}", list_date(loaded, store, day))
    key = f"{which}:{name}"
    lists = KlaviyoLists(store)
    remembered = lists.resolved(key)
    if remembered is not None:
        return remembered
    list_id, created = ops.find_or_create_list(client, name)
    lists.remember_resolved(key, name, list_id, created)
    log.info("Klaviyo %s list %r is %s%s", which, name, list_id, " (created)" if created else "")
    return list_id
