"""The engine's one query-building seam: the SQL fragments and statements its set-based
evaluation is made of. Node types, the walker and the evaluator compose these instead of
writing SQL of their own, so another backend changes this module, not the node types.

Every customer test reads ``c`` (the ``customers`` row) and ``e`` (its email ``consents`` row,
LEFT JOINed, so it may be NULL); a customer without a consent row is ``never_subscribed``, as in
Klaviyo. This module imports nothing from ``warmup.plan``: node types load before the plan.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from warmup.store import consents
from warmup.store.customers import values_json_sql
from warmup.store.outbox import EMAIL, KLAVIYO, NEW, PENDING, WEBHOOK

SqlPart = tuple[str, list[Any]]

# The one rule no scenario can override: these customers are never allocated to anyone.
SAFE = (
    "(COALESCE(e.status, 'never_subscribed') NOT IN ('unsubscribed', 'suppressed') "
    "AND c.email_valid = 1)"
)
CUSTOMER_JOIN = (
    "JOIN customers c ON c.id = {alias}.customer_id "
    "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email'"
)
OUTBOX_COLUMNS = (
    "INSERT OR IGNORE INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
    "status, not_before, after_key, created_at, updated_at) "
)


# Whether the customer's address needs SMTPUTF8 (``warmup_international``, warmup.addresses).
# An all-ASCII address (as many characters as UTF-8 bytes: nearly every customer) is decided in
# SQL; only the rest pay for a Python call, which was a third of the allocation's CPU.
INTERNATIONAL = (
    "(CASE WHEN length(c.email) = length(CAST(c.email AS BLOB)) THEN 0 "
    "ELSE warmup_international(c.email) END)"
)


# Connection-private tables of one evaluation (never in the store file):
# engine_paths (the scenario's paths), engine_flow1 (every customer's stage-1 path),
# engine_flow2 (customers at the allocation, ranked, with stage-2 paths), engine_state.
TEMP_TABLES = (
    "engine_paths",
    "engine_flow1",
    "engine_flow2",
    "engine_state",
    "engine_engagement",
)


def drop_temp(conn: sqlite3.Connection) -> None:
    for name in TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


def create_paths(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """``engine_paths``: (id, node ids as JSON, last node, last label, tier) per path."""
    conn.execute(
        "CREATE TEMP TABLE engine_paths (id INTEGER PRIMARY KEY, json TEXT, "
        "last_node TEXT, last_label TEXT, tier INTEGER)"
    )
    conn.executemany("INSERT INTO engine_paths VALUES (?, ?, ?, ?, ?)", rows)


def evaluate_stage1(conn: sqlite3.Connection, expr: str, params: list[Any]) -> None:
    """``engine_flow1``: every customer's stage-1 path id, by the walker's CASE ``expr``."""
    conn.execute("CREATE TEMP TABLE engine_flow1 (customer_id INTEGER PRIMARY KEY, path INTEGER)")
    conn.execute(
        f"INSERT INTO engine_flow1 SELECT c.id, {expr} FROM customers c "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email'",
        params,
    )


def path_counts(conn: sqlite3.Connection, table: str) -> dict[int, int]:
    """Customers per path id in ``engine_flow1`` or ``engine_flow2``."""
    # a flow without an on-date trigger leaves every path NULL: keep that key as it is
    counts: dict[int, int] = dict(conn.execute(f"SELECT path, count(*) FROM {table} GROUP BY path"))
    return counts


def group_counts(conn: sqlite3.Connection, eligible: int) -> list[tuple[str, int, int]]:
    """Per mailbox group in ``engine_flow2``: customers ranked within ``eligible`` and customers
    new (a sum over no rows is NULL: read as 0)."""
    return conn.execute(
        f"SELECT grp, sum(rank <= {int(eligible)}), sum(is_new) FROM engine_flow2 GROUP BY grp"
    ).fetchall()


def count_international(conn: sqlite3.Connection, marks: str) -> int:
    """Customers on stage-1 paths ``marks`` the new provider cannot mail (warmup.addresses)."""
    (count,) = conn.execute(
        "SELECT count(*) FROM engine_flow1 f JOIN customers c ON c.id = f.customer_id "
        f"WHERE f.path IN ({marks}) AND {INTERNATIONAL}"
    ).fetchone()
    return int(count)


def rank_stage2(
    conn: sqlite3.Connection,
    marks: str,
    cases: list[str],
    params: list[Any],
    *,
    limit: int,
    join: str,
    grp: str = "NULL AS grp",
    choose: Callable[[str], str] | None = None,
    scored: bool = False,
) -> None:
    """``engine_flow2``: customers on the pending paths ``marks`` in rank order, the first
    ``limit`` to the new provider, each with their stage-2 path (``cases`` by stage-1 path).
    ``grp`` is each customer's mailbox group column and ``choose(ranked)`` the SELECT adding
    ``is_new`` over the ranked rows when mailbox groups have caps (warmup.mailboxes).
    ``scored``: most engaged first by the day's ``engine_engagement`` score
    (:func:`fill_engagement_scores`) ahead of the export's last engagement."""
    # Rows arrive in rank order: a plain table (no key to keep sorted) is the cheap target.
    conn.execute(
        "CREATE TEMP TABLE engine_flow2 (customer_id INTEGER, path INTEGER, "
        "tier INTEGER, rank INTEGER, is_new INTEGER, grp TEXT)"
    )
    # Arrival order (tier), then most engaged first (the plan's Klaviyo engagement score when
    # it ranks by it, then the export's last engagement, NULL last), then the stable hash.
    score_order, score_join = (SCORE_ORDER, SCORE_JOIN) if scored else ("", "")
    ranked = (
        f"SELECT f.customer_id, f.path, p.tier, {INTERNATIONAL} AS intl, {grp}, "
        # whoever the new provider cannot mail ranks last and never takes a slot
        f"ROW_NUMBER() OVER (ORDER BY {INTERNATIONAL}, p.tier, "
        f"{score_order}c.last_engaged_at IS NULL, c.last_engaged_at DESC, "
        "warmup_rank_hash(c.email), c.email) AS rank FROM engine_flow1 f "
        "JOIN engine_paths p ON p.id = f.path "
        f"JOIN customers c ON c.id = f.customer_id {score_join} WHERE f.path IN ({marks})"
    )
    chosen = (
        choose(ranked)
        if choose is not None
        else f"SELECT *, rank <= {limit} AND NOT intl AS is_new FROM ({ranked})"
    )
    conn.execute(
        "INSERT INTO engine_flow2 SELECT r.customer_id, "
        f"CASE r.path {' '.join(cases)} END, r.tier, r.rank, r.is_new, r.grp FROM ("
        f"{chosen}) r {join}",
        params,
    )


_JOURNEY_COLUMNS = "(day, customer_id, path_id, node, due_at, outcome, rank)"
_JOURNEY_SELECT = (
    "SELECT ?, f.customer_id, f.path, s.node, s.due_at, s.outcome, {rank} "
    "FROM {table} f JOIN engine_state s ON s.path = f.path"
)


def freeze_stage1(
    conn: sqlite3.Connection, day: int, states: list[tuple[Any, ...]], pending: str
) -> None:
    """The day's paths into ``journey_paths`` and the journeys of everyone not waiting for
    the allocation (stage-1 paths other than ``pending``); ``states`` is (path, node now,
    due at, outcome) per path."""
    conn.execute("DROP TABLE IF EXISTS temp.engine_state")
    conn.execute(
        "CREATE TEMP TABLE engine_state (path INTEGER PRIMARY KEY, node TEXT, "
        "due_at TEXT, outcome TEXT)"
    )
    conn.executemany("INSERT INTO engine_state VALUES (?, ?, ?, ?)", states)
    # The day's paths once; each journey names its path by id (see migration 040).
    conn.execute("DELETE FROM journey_paths WHERE day = ?", (day,))
    conn.execute(
        "INSERT INTO journey_paths (day, id, path, last_label) "
        "SELECT ?, id, json, last_label FROM engine_paths",
        [day],
    )
    # In customer order: the rows append to the end of the (day, customer_id) B-tree instead
    # of landing at random pages, as they would in rank order.
    conn.execute(
        f"INSERT OR REPLACE INTO journeys {_JOURNEY_COLUMNS} "
        + _JOURNEY_SELECT.format(rank="NULL", table="engine_flow1")
        + f" WHERE f.path NOT IN ({pending}) ORDER BY f.customer_id",
        [day],
    )


def freeze_allocation(conn: sqlite3.Connection, day: int) -> None:
    """The ranked customers' journeys and the day's ``allocations`` from ``engine_flow2``."""
    conn.execute(
        f"INSERT OR REPLACE INTO journeys {_JOURNEY_COLUMNS} "
        + _JOURNEY_SELECT.format(rank="f.rank", table="engine_flow2")
        + " ORDER BY f.customer_id",
        [day],
    )
    conn.execute(
        "INSERT OR REPLACE INTO allocations (day, customer_id, provider, tier, grp) "
        "SELECT ?, customer_id, CASE WHEN is_new THEN 'new' ELSE 'klaviyo' END, "
        "tier, grp FROM engine_flow2 ORDER BY customer_id",
        [day],
    )


def move_journeys(
    conn: sqlite3.Connection,
    day: int,
    where: str,
    params: list[Any],
    *,
    node: str,
    due_at: str | None,
) -> None:
    """Journeys matching ``where`` (alias ``journeys``) are now at ``node``, parked until
    ``due_at`` (None: not parked)."""
    conn.execute(
        f"UPDATE journeys SET node = ?, due_at = ? WHERE day = ? AND {where} "
        "AND (node IS NOT ? OR due_at IS NOT ?)",
        (node, due_at, day, *params, node, due_at),
    )


def new_set_changes(conn: sqlite3.Connection, rows: str, prev: int) -> tuple[int, int, int]:
    """(today's new-provider set, of them not in day ``prev``'s, day ``prev``'s set) for the
    new-provider set ``rows`` selects (``customer_id, rank``)."""
    today, added = conn.execute(
        "SELECT count(*), coalesce(sum(NOT EXISTS (SELECT 1 FROM allocations a "
        "WHERE a.day = ? AND a.customer_id = t.customer_id AND a.provider = 'new')), 0) "
        f"FROM ({rows}) t",
        (prev,),
    ).fetchone()
    before = conn.execute(
        "SELECT count(*) FROM allocations WHERE day = ? AND provider = 'new'", (prev,)
    ).fetchone()[0]
    return int(today), int(added), int(before)


def ranked_customers(
    conn: sqlite3.Connection,
    rows: str,
    columns: Sequence[str],
    size: int,
    *,
    not_in_list: str | None = None,
) -> list[tuple[Any, ...]]:
    """(rank, *columns) of the set ``rows`` selects, best first: the first ``size`` ranks, or
    with ``not_in_list`` the first ``size`` who are not confirmed members of that list."""
    cols = ", ".join(f"c.{name}" for name in columns)
    head = f"SELECT t.rank, {cols} FROM ({rows}) t JOIN customers c ON c.id = t.customer_id "
    if not_in_list is None:
        found = conn.execute(f"{head}WHERE t.rank <= {int(size)} ORDER BY t.rank").fetchall()
    else:
        found = conn.execute(
            f"{head}WHERE NOT EXISTS (SELECT 1 FROM klaviyo_members m WHERE m.list_id = ? "
            f"AND m.customer_id = t.customer_id) ORDER BY t.rank LIMIT {int(size)}",
            (not_in_list,),
        ).fetchall()
    return [tuple(row) for row in found]


def resolved_list_id(conn: sqlite3.Connection, ref: str) -> str | None:
    """The Klaviyo list id an earlier run resolved for ``ref`` (``exclusion:<name>``)."""
    row = conn.execute("SELECT list_id FROM klaviyo_lists WHERE ref = ?", (ref,)).fetchone()
    return None if row is None else str(row[0])


def klaviyo_id_confirmed(conn: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    """Which of the customers have a Klaviyo id Klaviyo itself returned (migration 030)."""
    return {
        int(cid)
        for (cid,) in conn.execute(
            f"SELECT id FROM customers WHERE klaviyo_id_confirmed AND id IN ({placeholders(ids)})",
            list(ids),
        )
    }


def case(test: str, yes: str, no: str) -> str:
    return f"(CASE WHEN {test} THEN {yes} ELSE {no} END)"


def all_of(parts: Sequence[str]) -> str:
    return "(" + " AND ".join(parts) + ")"


def placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def consent_status(channel: str) -> str:
    """The customer's consent status on ``channel`` (email is the joined ``e`` row)."""
    if channel == "email":
        return "e.status"
    return (
        f"(SELECT s.status FROM consents s WHERE s.customer_id = c.id AND s.channel = '{channel}')"
    )


def consent_in(channel: str, statuses: Sequence[str]) -> SqlPart:
    return (
        f"COALESCE({consent_status(channel)}, 'never_subscribed') IN ({placeholders(statuses)})",
        list(statuses),
    )


def in_segment(segment: str) -> SqlPart:
    return (
        "EXISTS (SELECT 1 FROM segment_members m WHERE m.segment = ? AND m.customer_id = c.id)",
        [segment],
    )


def allocated_new_on(days: Sequence[int]) -> SqlPart:
    """Allocated to the new provider on one of ``days`` (false when there are none)."""
    if not days:
        return "0", []
    marks = ", ".join(str(int(d)) for d in days)
    return (
        "EXISTS (SELECT 1 FROM allocations a WHERE a.customer_id = c.id "
        f"AND a.provider = 'new' AND a.day IN ({marks}))"
    ), []


def attribute_equals(key: str, value: object) -> SqlPart:
    # An imported value sits in attribute_values at its column's position (migration 009);
    # an empty or absent one falls back to the attributes object.
    path = '$."' + key.replace('"', '\\"') + '"'
    return (
        f"coalesce(nullif(json_extract({values_json_sql('c.attribute_values')}, "
        "(SELECT '$[' || n.position || ']' FROM attribute_names n WHERE n.name = ?)), ''), "
        "json_extract(c.attributes, ?)) = ?"
    ), [key, path, value]


def engagement_count(kinds: Sequence[str], start: str, end: str) -> SqlPart:
    """The customer's pulled Klaviyo events of ``kinds`` in [start, end) (none pulled: 0)."""
    return (
        "(SELECT count(*) FROM klaviyo_events k WHERE k.customer_id = c.id "
        f"AND k.kind IN ({placeholders(kinds)}) AND k.occurred_at >= ? AND k.occurred_at < ?)"
    ), [*kinds, start, end]


def engagement_within(
    kinds: Sequence[str], start: str, end: str, *, at_least: int | None, at_most: int | None
) -> SqlPart:
    """That count within the bounds given (a condition's ``engagement`` test)."""
    count, base = engagement_count(kinds, start, end)
    parts: list[str] = []
    params: list[Any] = []
    if at_least is not None:
        parts.append(f"{count} >= ?")
        params += [*base, at_least]
    if at_most is not None:
        parts.append(f"{count} <= ?")
        params += [*base, at_most]
    return all_of(parts), params


# The day's engagement score per customer (a connection-private table, like the engine's).
SCORE_TABLE = "engine_engagement"
SCORE_JOIN = f"LEFT JOIN {SCORE_TABLE} g ON g.customer_id = c.id"
SCORE_ORDER = "coalesce(g.score, 0) DESC, "


def fill_engagement_scores(
    conn: sqlite3.Connection, weights: Sequence[tuple[str, float]], start: str, end: str
) -> None:
    """``engine_engagement``: each customer's sum of ``weights`` (kind, weight) over their
    pulled Klaviyo events in [start, end), for :func:`rank_stage2`'s ``scored`` ranking."""
    conn.execute(f"DROP TABLE IF EXISTS temp.{SCORE_TABLE}")
    conn.execute(
        f"CREATE TEMP TABLE {SCORE_TABLE} (customer_id INTEGER PRIMARY KEY, score REAL NOT NULL)"
    )
    if not weights:
        return
    cases = " ".join("WHEN ? THEN ?" for _ in weights)
    params: list[object] = [value for pair in weights for value in pair]
    conn.execute(
        f"INSERT INTO {SCORE_TABLE} SELECT k.customer_id, total(CASE k.kind {cases} ELSE 0 END) "
        "FROM klaviyo_events k WHERE k.occurred_at >= ? AND k.occurred_at < ? "
        "GROUP BY k.customer_id",
        [*params, start, end],
    )


def count_rows(conn: sqlite3.Connection, rows: str) -> int:
    """How many rows the SELECT ``rows`` gives."""
    return int(conn.execute(f"SELECT count(*) FROM ({rows})").fetchone()[0])


def new_set_klaviyo_ids(conn: sqlite3.Connection, rows: str, prev: int) -> tuple[int, int]:
    """Of the day's new-provider set ``rows``, those not in it on day ``prev`` (joining the
    exclusion list), and how many of them have a Klaviyo id Klaviyo confirmed."""
    added, confirmed = conn.execute(
        "SELECT count(*), coalesce(sum(c.klaviyo_id_confirmed), 0) "
        f"FROM ({rows}) t JOIN customers c ON c.id = t.customer_id "
        "WHERE NOT EXISTS (SELECT 1 FROM allocations a WHERE a.day = ? "
        "AND a.customer_id = t.customer_id AND a.provider = 'new')",
        (prev,),
    ).fetchone()
    return int(added), int(confirmed)


def test_one(conn: sqlite3.Connection, test: SqlPart, customer_id: int) -> bool:
    """A branch test for one customer (the event flows walk one customer at a time)."""
    sql, params = test
    row = conn.execute(
        f"SELECT {sql} FROM customers c LEFT JOIN consents e ON e.customer_id = c.id "
        "AND e.channel = 'email' WHERE c.id = ?",
        [*params, customer_id],
    ).fetchone()
    return bool(row and row[0])


PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")


def insert_webhooks(
    conn: sqlite3.Connection,
    settings: dict[str, Any],
    *,
    node_id: str,
    key_prefix: str,
    day: int,
    source: str,
    params: list[Any],
    not_before: str | None,
    now: str,
    with_profile: bool = True,
) -> int:
    """One webhook outbox row per customer ``source`` yields (a FROM clause with ``c`` bound to
    ``customers``, or with ``with_profile=False`` to anything with an ``id`` column); the key is
    ``key_prefix`` + customer id.

    The payload holds the node's ``settings`` and, ``with_profile``, a copy of the customer's
    profile (``PROFILE_FIELDS``) for whoever reads the row. The dispatcher reads the profile
    from ``customers`` when it sends, so the day's bulk rows leave the copy out: building it
    per customer was most of the cost of writing them."""
    if with_profile:
        fields = ", ".join(f"'{name}', c.{name}" for name in PROFILE_FIELDS)
        payload_sql = f"json_object('list', ?, 'template', ?, 'batch_size', ?, {fields})"
        payload_params: list[Any] = list(settings.values())
    else:
        payload_sql = "?"
        payload_params = [json.dumps(settings, separators=(",", ":"))]
    cursor = conn.execute(
        f"{OUTBOX_COLUMNS}SELECT ? || c.id, ?, ?, '{WEBHOOK}', '{KLAVIYO}', c.id, {payload_sql}, "
        f"'{PENDING}', ?, NULL, ?, ? {source}",
        [key_prefix, day, node_id, *payload_params, not_before, now, now, *params],
    )
    return cursor.rowcount


def insert_emails(
    conn: sqlite3.Connection,
    *,
    node_id: str,
    key_prefix: str,
    day: int,
    template: str,
    where: str,
    params: list[Any],
    not_before: str | None,
    after: str | None,
    now: str,
) -> int:
    """One email outbox row per customer of the day's journeys matching ``where`` who is
    allocated to the new provider today and still mailable (``SAFE``) now."""
    cursor = conn.execute(
        f"{OUTBOX_COLUMNS}SELECT ? || c.id, ?, ?, '{EMAIL}', '{NEW}', c.id, ?, '{PENDING}', ?, "
        "CASE WHEN ? IS NULL THEN NULL ELSE ? || c.id END, ?, ? "
        "FROM journeys j JOIN allocations a ON a.day = j.day AND a.customer_id = j.customer_id "
        "AND a.provider = 'new' JOIN customers c ON c.id = j.customer_id "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email' "
        f"WHERE j.day = ? AND {where} AND {SAFE} ORDER BY j.customer_id",
        [
            key_prefix,
            day,
            node_id,
            json.dumps({"template": template}, separators=(",", ":")),
            not_before,
            after,
            after,
            now,
            now,
            day,
            *params,
        ],
    )
    return cursor.rowcount


def allocated_on_paths(conn: sqlite3.Connection, day: int, where: str, params: list[Any]) -> int:
    """Customers of the day's journeys matching ``where`` allocated to the new provider."""
    row = conn.execute(
        f"SELECT count(*) FROM journeys j WHERE j.day = ? AND j.outcome = 'new' AND {where}",
        [day, *params],
    ).fetchone()
    return int(row[0])


def mark_unmailed_skipped(
    conn: sqlite3.Connection, day: int, where: str, params: list[Any], key_prefix: str
) -> None:
    """Allocated customers on these paths without an email row become ``skipped``."""
    conn.execute(
        "UPDATE journeys SET outcome = 'skipped' WHERE day = ? AND outcome = 'new' AND "
        f"customer_id IN (SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {where}) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = ? || journeys.customer_id)",
        [day, day, *params, key_prefix],
    )


def reject_consent(
    conn: sqlite3.Connection,
    ids_sql: str,
    params: list[Any],
    *,
    channel: str,
    source: str,
    now: str,
) -> int:
    """Unsubscribe the customers ``ids_sql`` selects (one ``customer_id`` column). Customers
    already unsubscribed are left alone, so running it twice records one change.

    The store's ``consents_history`` trigger records changes of existing consent rows; only a
    customer without one gets their ``consent_changes`` row here."""
    conn.execute(
        "INSERT INTO consent_changes (customer_id, channel, old_status, new_status, changed_at, "
        "source) SELECT x.customer_id, ?, s.status, 'unsubscribed', ?, ? "
        f"FROM ({ids_sql}) x LEFT JOIN consents s ON s.customer_id = x.customer_id "
        "AND s.channel = ? WHERE s.status IS NULL",
        [channel, now, source, *params, channel],
    )
    cursor = conn.execute(
        consents.upsert_sql(
            f"SELECT x.customer_id, ?, 'unsubscribed', ?, ? FROM ({ids_sql}) x WHERE true",
            keep=(consents.UNSUBSCRIBED,),
        ),
        [channel, now, source, *params],
    )
    return cursor.rowcount
