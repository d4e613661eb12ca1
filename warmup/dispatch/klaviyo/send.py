"""Sending a group of list changes to Klaviyo in batches: a per-profile refusal puts that row
on hold and the rest of the batch goes on; a call that keeps failing leaves its rows failed;
what Klaviyo acknowledged waits for the read-back (:mod:`.readback`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from warmup.dispatch.klaviyo.readback import await_subscriptions
from warmup.dispatch.klaviyo.unsubscribe import lower_consent
from warmup.errors import KlaviyoError, ProviderError
from warmup.providers.klaviyo import endpoint_for
from warmup.providers.klaviyo import lists as ops
from warmup.store.outbox import FAILED, ON_HOLD, PENDING, SENDING, SENT, ListChange

if TYPE_CHECKING:
    from warmup.dispatch.klaviyo.drain import ListChangeDrain

ADD_TEMPLATE = "klaviyo/add-profiles-to-list.json.j2"
SUBSCRIBE_PATH = "/api/profile-subscription-bulk-create-jobs"
_INDEXED_POINTER = re.compile(r"^/data/(?:attributes/profiles/data/)?(\d+)(?:/|$)")
_DEAD_ID = re.compile(r"profile with id (\S+) does not exist")


def send_all(
    drain: ListChangeDrain,
    template: str,
    which: str | None,
    list_id: str | None,
    rows: list[ListChange],
    batch: int,
) -> None:
    size = batch
    while rows:
        chunk = rows[:size]
        envelope = drain.render(template, list_id, chunk)
        endpoint = endpoint_for(envelope["method"], envelope["path"])
        if endpoint and endpoint.max_items and len(chunk) > endpoint.max_items:
            size = endpoint.max_items
            continue
        drain.mark(chunk, SENDING)
        done = send_chunk(drain, envelope, which, list_id, chunk)
        rows = rows[len(chunk) :] if done is None else [*done, *rows[len(chunk) :]]


def send_chunk(
    drain: ListChangeDrain,
    envelope: dict[str, Any],
    which: str | None,
    list_id: str | None,
    chunk: list[ListChange],
) -> list[ListChange] | None:
    """Send one batch. Returns the rows to send again (a per-profile 400 took one out).
    What Klaviyo acknowledged waits in ``acked`` for the read-back (``confirm``)."""
    client = drain.client
    try:
        response = client.call(envelope["method"], envelope["path"], json=envelope.get("body"))
        refused: dict[int, str] = {}
        if response.content:
            data = response.json().get("data") or {}
            if isinstance(data, dict) and data.get("type") == "profile-bulk-import-job":
                outcome = ops.wait_for_import(
                    client, str(data["id"]), poll=0.02 if client.scale > 1 else 0.5
                )
                refused = outcome.for_rows([r.profile["email"] for r in chunk])
        unconfirmed: set[str] | None = None
        if envelope["path"].rstrip("/") == SUBSCRIBE_PATH and list_id:
            unconfirmed = await_subscriptions(drain, list_id, chunk)
        if which == "unsubscribe":
            for held, reason in lower_consent(drain, chunk).items():
                refused.setdefault(held, reason)
    except KlaviyoError as exc:
        if exc.status in (401, 403):
            drain.mark(chunk, PENDING)
            raise  # a wrong key or scope fails every call alike: stop, hold nothing
        if exc.status >= 500 or exc.status == 429:
            drain.mark(chunk, FAILED, exc.message)
            drain.report.problems.append(exc.message)
            return None
        if exc.status == 404 and list_id and chunk[0].profile["klaviyo_id"]:
            return dead_id(drain, exc, list_id, chunk)
        index = _failed_index(exc)
        if index is not None and index < len(chunk):
            detail = exc.errors[0].detail if exc.errors else exc.message
            drain.mark([chunk[index]], ON_HOLD, f"Klaviyo {exc.status}: {detail}")
            return chunk[:index] + chunk[index + 1 :]
        drain.mark(chunk, FAILED, exc.message)
        drain.report.problems.append(exc.message)
        return None
    except ProviderError as exc:
        drain.mark(chunk, FAILED, exc.message)
        drain.report.problems.append(exc.message)
        return None
    for index, reason in refused.items():
        # Not in the list, and a new import will not change Klaviyo's mind: hold it.
        drain.mark([chunk[index]], ON_HOLD, f"Klaviyo: {reason}")
    good = [r for i, r in enumerate(chunk) if i not in refused]
    if not list_id:
        drain.mark(good, SENT)
        return None
    if unconfirmed is not None:
        # the subscription wait read these back from the list already
        seen = [r for r in good if (r.profile["email"] or "").lower() not in unconfirmed]
        drain.mark(seen, SENT, list_id=list_id)
        drain.verified.update(r.id for r in seen)
        good = [r for r in good if r not in seen]
    drain.acked[list_id].extend(good)
    return None


def dead_id(
    drain: ListChangeDrain, exc: KlaviyoError, list_id: str, chunk: list[ListChange]
) -> list[ListChange] | None:
    """A strict Klaviyo 404s a whole batch for one unknown id: that person joins by email
    (after the read-back), the rest of the batch is sent again."""
    dead = {m.group(1) for e in exc.errors if (m := _DEAD_ID.search(e.detail or ""))}
    gone = [r for r in chunk if r.profile["klaviyo_id"] in dead] or chunk
    drain.lists.distrust_ids([r.customer_id for r in gone])
    drain.report.dead_ids += len(gone)
    drain.acked[list_id].extend(gone)
    rest = [r for r in chunk if r not in gone]
    return rest or None


def _failed_index(exc: KlaviyoError) -> int | None:
    for error in exc.errors:
        match = _INDEXED_POINTER.match(error.pointer or "")
        if match:
            return int(match.group(1))
    return None
