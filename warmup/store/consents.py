"""The consents aggregate: one status per customer and channel, and its change history.

Every writer of a consent (the importer, the consent_reject node, a provider's hard bounce, the
Klaviyo pull) goes through :func:`upsert_sql`, the one upsert; what differs between them is only
which statuses a writer may not overwrite (``keep``). The store's ``consents_history`` trigger
records each change of an existing row in ``consent_changes``.
"""

from __future__ import annotations

from collections.abc import Collection

from warmup.store.backends import Backend, Executes

SUBSCRIBED = "subscribed"
NEVER_SUBSCRIBED = "never_subscribed"
UNSUBSCRIBED = "unsubscribed"
SUPPRESSED = "suppressed"
STATUSES = (SUBSCRIBED, NEVER_SUBSCRIBED, UNSUBSCRIBED, SUPPRESSED)
# Withdrawn consent is sticky: a later subscribe from an import never undoes it.
WITHDRAWN = (UNSUBSCRIBED, SUPPRESSED)

EMAIL = "email"
HARD_BOUNCE_SOURCE = "hard_bounce"


def _quoted(statuses: Collection[str]) -> str:
    unknown = set(statuses) - set(STATUSES)
    if unknown:
        raise ValueError(f"not consent statuses: {sorted(unknown)}")
    return ", ".join(f"'{status}'" for status in sorted(statuses))


def upsert_sql(rows: str, *, keep: Collection[str], unless: Collection[str] = ()) -> str:
    """The one consent upsert. ``rows`` is a ``VALUES`` or ``SELECT`` giving (customer_id,
    channel, status, changed_at, source); a row already there takes the new status unless it is
    the same or one of ``keep`` (withdrawals a writer must not undo), except that a new status
    in ``unless`` overrides ``keep``. A ``SELECT`` must end in a ``WHERE`` clause (``WHERE
    true`` will do): without one SQLite reads ``ON CONFLICT`` as part of a join.

    A statement, not a function call, so that set-based writers (the importer's trigger, the
    engine's consent_reject) run it inside their own SQL at full speed."""
    guard = f"consents.status NOT IN ({_quoted(keep)})" if keep else "true"
    if unless:
        guard = f"({guard} OR excluded.status IN ({_quoted(unless)}))"
    return (
        "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
        f"{rows} "
        "ON CONFLICT (customer_id, channel) DO UPDATE SET status = excluded.status, "
        "changed_at = excluded.changed_at, source = excluded.source "
        f"WHERE consents.status != excluded.status AND {guard}"
    )


_ONE_ROW = "VALUES (?, ?, ?, ?, ?)"


def set_status(
    conn: Executes,
    customer_id: int,
    status: str,
    *,
    changed_at: str,
    source: str,
    keep: Collection[str],
    channel: str = EMAIL,
) -> bool:
    """Set one customer's consent on ``channel`` (see :func:`upsert_sql` for ``keep``); whether
    it changed."""
    cursor = conn.execute(
        upsert_sql(_ONE_ROW, keep=keep), (customer_id, channel, status, changed_at, source)
    )
    return int(cursor.rowcount) > 0


def suppress_hard_bounce_sql(*, keep: Collection[str]) -> str:
    """A hard bounce makes the address unmailable, as Klaviyo's HARD_BOUNCE suppression does:
    no later day allocates it to either provider. Parameters: (customer_id, changed_at)."""
    return upsert_sql(
        f"VALUES (?, '{EMAIL}', '{SUPPRESSED}', ?, '{HARD_BOUNCE_SOURCE}')", keep=keep
    )


def suppress_hard_bounce(
    conn: Executes, customer_id: int, *, at: str, keep: Collection[str]
) -> bool:
    """Run :func:`suppress_hard_bounce_sql` for one customer; whether the consent changed."""
    cursor = conn.execute(suppress_hard_bounce_sql(keep=keep), (customer_id, at))
    return int(cursor.rowcount) > 0


def status_of(conn: Executes, customer_id: int) -> dict[str, str]:
    """Channel → status of one customer."""
    return {
        str(channel): str(status)
        for channel, status in conn.execute(
            "SELECT channel, status FROM consents WHERE customer_id = ?", (customer_id,)
        )
    }


# The Klaviyo unsubscribe-list rows of the outbox: how withdrawn consent reaches Klaviyo.
def _unsubscribe_rows(db: Backend) -> str:
    return (
        "FROM outbox_rows WHERE kind = 'webhook' AND provider = 'klaviyo' "
        f"AND {db.json_text('payload', 'list')} = 'unsubscribe'"
    )


def unsubscribe_rows_waiting_day(db: Backend) -> int | None:
    """The latest day with an unsubscribe-list row still to send (pending or sending)."""
    row = db.execute(
        f"SELECT max(day) {_unsubscribe_rows(db)} AND status IN ('pending', 'sending')"
    ).fetchone()
    return None if row[0] is None else int(row[0])


def unsubscribe_rows_unsent(db: Backend) -> tuple[int, str | None]:
    """How many unsubscribe-list rows are not sent (nor cancelled), and the oldest's creation."""
    count, oldest = db.execute(
        f"SELECT count(*), min(created_at) {_unsubscribe_rows(db)} "
        "AND status NOT IN ('sent', 'cancelled')"
    ).fetchone()
    return int(count), None if oldest is None else str(oldest)


def apply_consent_list(
    conn: Executes,
    category: str,
    member_ids: Collection[int],
    *,
    changed_at: str,
    source: str,
) -> dict[str, int]:
    """A consent category from its Klaviyo list (seed 004's consent mapping): members are
    ``subscribed`` ("Subscribed to List"), a customer subscribed before who is no longer a
    member ``unsubscribed`` ("Unsubscribed from List"), and every customer whose email or SMS
    consent is withdrawn ``unsubscribed`` in the category ("Unsubscribed from Email Marketing"
    and "Unsubscribed from SMS" reject all mapped categories). Only changed rows are written
    (the store's trigger keeps their history); returns how many became each status."""
    before = {
        int(cid): str(status)
        for cid, status in conn.execute(
            "SELECT customer_id, status FROM consents WHERE channel = ?", (category,)
        )
    }
    withdrawn = {
        int(cid)
        for (cid,) in conn.execute(
            f"SELECT customer_id FROM consents WHERE channel IN ('{EMAIL}', 'sms') "
            f"AND status IN ({_quoted(WITHDRAWN)})"
        )
    }
    members = set(member_ids)
    target = {cid: SUBSCRIBED for cid in members}
    target.update(
        {cid: UNSUBSCRIBED for cid, s in before.items() if s == SUBSCRIBED and cid not in members}
    )
    target.update({cid: UNSUBSCRIBED for cid in withdrawn})
    changed = [(cid, status) for cid, status in sorted(target.items()) if before.get(cid) != status]
    statement = upsert_sql(_ONE_ROW, keep=())
    for cid, status in changed:
        conn.execute(statement, (cid, category, status, changed_at, source))
    counts = {SUBSCRIBED: 0, UNSUBSCRIBED: 0}
    for _, status in changed:
        counts[status] += 1
    return counts


def category_counts(conn: Executes, category: str) -> dict[str, int]:
    """Status → customers of one consent category (no row: never subscribed)."""
    return {
        str(status): int(n)
        for status, n in conn.execute(
            "SELECT status, count(*) FROM consents WHERE channel = ? GROUP BY status",
            (category,),
        )
    }
