"""The engine's one query-building seam: the SQL fragments and statements its set-based
evaluation is made of. Node types, the walker and the evaluator compose these instead of
writing SQL of their own, so another backend changes this module, not the node types.

Every customer test reads ``c`` (the ``customers`` row) and ``e`` (its email ``consents`` row,
LEFT JOINed, so it may be NULL); a customer without a consent row is ``never_subscribed``, as in
Klaviyo. This module imports nothing from ``warmup.plan``: node types load before the plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warmup.store import consents
from warmup.store.backends import Backend
from warmup.store.customers import values_json_sql
from warmup.store.outbox import EMAIL, KLAVIYO, NEW, PENDING, SHARED_PAYLOAD, WEBHOOK

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
_OUTBOX_COLUMNS = (
    "INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
    "status, not_before, after_key, created_at, updated_at) "
)


def _shared_payload(conn: Backend, day: int, node_id: str, payload: str) -> str:
    """What each of a day's bulk rows of ``node_id`` stores as its payload: '' when
    ``payload`` is the one kept for the day and node in ``outbox_payloads`` (recorded now if
    none is), else ``payload`` itself (a plan whose node settings changed between two runs of
    the day keeps the earlier rows' payload as it was). Written in the rows' transaction."""
    head, tail = _insert_new(
        conn, "INTO outbox_payloads (day, node_id, payload) ", "VALUES (?, ?, ?)"
    )
    conn.execute(head + tail, [day, node_id, payload])
    (kept,) = conn.execute(
        "SELECT payload FROM outbox_payloads WHERE day = ? AND node_id = ?", [day, node_id]
    ).fetchone()
    return SHARED_PAYLOAD if kept == payload else payload


def _insert_new(conn: Backend, into: str, select: str) -> tuple[str, str]:
    """(head, tail) of an INSERT … SELECT that skips rows whose key is already there: SQLite's
    ``INSERT OR IGNORE`` (unchanged: a store mid-ramp keeps its plans), PostgreSQL's
    ``ON CONFLICT DO NOTHING``."""
    if conn.dialect == "postgresql":
        return f"INSERT {into}{select}", " ON CONFLICT DO NOTHING"
    return f"INSERT OR IGNORE {into}{select}", ""


# Whether the customer's address needs SMTPUTF8 (``warmup_international``, warmup.addresses).
# An all-ASCII address (as many characters as UTF-8 bytes: nearly every customer) is decided in
# SQL; only the rest pay for a Python call, which was a third of the allocation's CPU.
INTERNATIONAL = (
    "(CASE WHEN length(c.email) = length(CAST(c.email AS BLOB)) THEN 0 "
    "ELSE warmup_international(c.email) END)"
)
# PostgreSQL runs no Python: the day's few non-ASCII addresses are decided in Python before
# the evaluation (:func:`fill_python_values`) and read from ``engine_intl``.
_INTERNATIONAL_PG = (
    "(CASE WHEN length(c.email) = octet_length(c.email) THEN 0 "
    "WHEN EXISTS (SELECT 1 FROM engine_intl i WHERE i.customer_id = c.id) THEN 1 ELSE 0 END)"
)


def international(conn: Backend) -> str:
    return _INTERNATIONAL_PG if conn.dialect == "postgresql" else INTERNATIONAL


def rank_hash(conn: Backend) -> tuple[str, str]:
    """(the ranking's stable tie-break, the join it needs) (evaluate.rank_hash): a Python
    function on SQLite; on PostgreSQL the same 56-bit values, computed in Python beforehand,
    joined from ``engine_rank`` (a hash join: a lookup per row made the plan costly enough
    for the server to spend a second compiling it)."""
    if conn.dialect == "postgresql":
        return "h.hash", "LEFT JOIN engine_rank h ON h.customer_id = c.id"
    return "warmup_rank_hash(c.email)", ""


def email_order(conn: Backend) -> str:
    # SQLite compares text bytewise; PostgreSQL by the database's collation unless told
    return 'c.email COLLATE "C"' if conn.dialect == "postgresql" else "c.email"


def python_value(conn: Backend, function: str, salt: str) -> SqlPart:
    """A call ``function(salt, c.email)`` of a Python SQL function a node type registers
    (``NodeType.sql_functions``), e.g. the split node's bucket: on PostgreSQL the value
    :func:`fill_python_values` stored for the customer and the salt."""
    if conn.dialect == "postgresql":
        return (
            "(SELECT v.value FROM engine_values v WHERE v.function = "
            f"'{function}' AND v.salt = ? AND v.customer_id = c.id)"
        ), [_salt_key(salt)]
    return f"{function}(?, c.email)", [salt]


def _batches(conn: Backend, sql: str, size: int = 20_000) -> Iterator[list[tuple[int, str | None]]]:
    # Each batch is loaded (COPY) while the read waits between fetches: a COPY cannot run
    # while a fetch is under way on the same connection.
    batch: list[tuple[int, str | None]] = []
    for customer_id, email in conn.rows(sql, (), size):
        batch.append((int(customer_id), None if email is None else str(email)))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _salt_key(salt: str) -> str:
    # salts hold NUL separators, which PostgreSQL's text cannot
    return salt.encode().hex()


def fill_python_values(
    conn: Backend,
    values: Sequence[tuple[str, str, Callable[[str, str | None], object]]],
    *,
    rank: Callable[[str], int] | None,
    intl: Callable[[str | None], int],
    customers: Sequence[int] | None = None,
) -> None:
    """PostgreSQL only: what SQLite's Python SQL functions compute, computed here for every
    customer (or ``customers``) and loaded into the connection's temp tables — ``engine_rank``
    (``rank``), ``engine_intl`` (non-ASCII addresses ``intl`` marks) and ``engine_values``
    ((function, salt, fn) of the node types) — so both engines decide alike."""
    if conn.dialect != "postgresql":
        return
    # The evaluation's few big statements: JIT compiling them costs more than it saves (a
    # second of a 100k-customer day), and the ranking's sort should stay in memory.
    conn.execute("SET jit = off")
    conn.execute("SET work_mem = '64MB'")
    # the temp tables stay in memory (takes effect only before the session's first temp table)
    conn.execute("SET temp_buffers = '64MB'")
    for name in ("engine_rank", "engine_intl", "engine_values"):
        conn.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
    conn.execute("CREATE TEMP TABLE engine_rank (customer_id BIGINT, hash BIGINT)")
    conn.execute("CREATE TEMP TABLE engine_intl (customer_id BIGINT PRIMARY KEY)")
    conn.execute(
        "CREATE TEMP TABLE engine_values (function TEXT, salt TEXT, customer_id BIGINT, "
        "value DOUBLE PRECISION, PRIMARY KEY (function, salt, customer_id))"
    )
    chosen = "" if customers is None else f"id IN ({', '.join(str(int(i)) for i in customers)})"
    if customers is not None and not customers:
        chosen = "false"

    def people(test: str = "") -> Iterator[list[tuple[int, str | None]]]:
        where = " AND ".join(t for t in (chosen, test) if t)
        sql = "SELECT id, email FROM customers" + (f" WHERE {where}" if where else "")
        yield from _batches(conn, sql)

    # a batch at a time: a million customers' emails never sit in memory at once
    if rank is not None:
        for batch in people():
            conn.bulk_load(
                "engine_rank", ("customer_id", "hash"), [(i, rank(e)) for i, e in batch if e]
            )
    for batch in people("length(email) <> octet_length(email)"):
        conn.bulk_load("engine_intl", ("customer_id",), [(i,) for i, e in batch if intl(e)])
    for function, salt, fn in values:
        key = _salt_key(salt)
        for batch in people():
            conn.bulk_load(
                "engine_values",
                ("function", "salt", "customer_id", "value"),
                [(function, key, i, fn(salt, e)) for i, e in batch],
            )
    for name in ("engine_rank", "engine_intl", "engine_values"):
        conn.execute(f"ANALYZE {name}")


# Connection-private tables of one evaluation (never in the store file):
# engine_paths (the scenario's paths), engine_flow1 (every customer's stage-1 path),
# engine_flow2 (customers at the allocation, ranked, with stage-2 paths), engine_state; on
# PostgreSQL also the values SQLite's Python SQL functions give (fill_python_values).
TEMP_TABLES = (
    "engine_paths",
    "engine_flow1",
    "engine_flow2",
    "engine_state",
    "engine_engagement",
    "engine_rank",
    "engine_intl",
    "engine_values",
)


def temp(conn: Backend, name: str) -> str:
    """A temp table's qualified name: SQLite's ``temp`` schema, PostgreSQL's ``pg_temp``."""
    return f"{'pg_temp' if conn.dialect == 'postgresql' else 'temp'}.{name}"


def drop_temp(conn: Backend) -> None:
    for name in TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {temp(conn, name)}")


def create_paths(conn: Backend, rows: list[tuple[Any, ...]]) -> None:
    """``engine_paths``: (id, node ids as JSON, last node, last label, tier) per path."""
    conn.execute(
        "CREATE TEMP TABLE engine_paths (id INTEGER PRIMARY KEY, json TEXT, "
        "last_node TEXT, last_label TEXT, tier INTEGER)"
    )
    conn.executemany("INSERT INTO engine_paths VALUES (?, ?, ?, ?, ?)", rows)


def evaluate_stage1(conn: Backend, expr: str, params: list[Any]) -> None:
    """``engine_flow1``: every customer's stage-1 path id, by the walker's CASE ``expr``."""
    if conn.dialect == "postgresql":
        # no key: its joins are hash joins, and an index to maintain is a third of the insert
        conn.execute("CREATE TEMP TABLE engine_flow1 (customer_id BIGINT, path INTEGER)")
    else:
        conn.execute(
            "CREATE TEMP TABLE engine_flow1 (customer_id INTEGER PRIMARY KEY, path INTEGER)"
        )
    conn.execute(
        f"INSERT INTO engine_flow1 SELECT c.id, {expr} FROM customers c "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email'",
        params,
    )
    if conn.dialect == "postgresql":
        # the planner needs the new table's size to join it sensibly
        conn.execute("ANALYZE engine_flow1")


def path_counts(conn: Backend, table: str) -> dict[int, int]:
    """Customers per path id in ``engine_flow1`` or ``engine_flow2``."""
    # a flow without an on-date trigger leaves every path NULL: keep that key as it is
    counts: dict[int, int] = {
        path: int(n)
        for path, n in conn.execute(f"SELECT path, count(*) FROM {table} GROUP BY path")
    }
    return counts


def group_counts(conn: Backend, eligible: int) -> list[tuple[str, int, int]]:
    """Per mailbox group in ``engine_flow2``: customers ranked within ``eligible`` and customers
    new (a sum over no rows is NULL: read as 0)."""
    return [
        (str(grp), int(reached or 0), int(new or 0))
        for grp, reached, new in conn.execute(
            f"SELECT grp, sum(CASE WHEN rank <= {int(eligible)} THEN 1 ELSE 0 END), sum(is_new) "
            "FROM engine_flow2 GROUP BY grp"
        )
    ]


def group_fallbacks(conn: Backend, marks: str) -> tuple[int, int]:
    """Customers on the pending paths ``marks`` counted ``other`` for want of their company
    domain's MX answer, and those domains."""
    customers, domains = conn.execute(
        "SELECT count(*), count(DISTINCT m.domain) FROM mailbox_customers m "
        "JOIN engine_flow1 f ON f.customer_id = m.customer_id "
        f"WHERE m.fallback = 1 AND f.path IN ({marks})"
    ).fetchone()
    return int(customers), int(domains)


def count_international(conn: Backend, marks: str) -> int:
    """Customers on stage-1 paths ``marks`` the new provider cannot mail (warmup.addresses)."""
    (count,) = conn.execute(
        "SELECT count(*) FROM engine_flow1 f JOIN customers c ON c.id = f.customer_id "
        f"WHERE f.path IN ({marks}) AND {international(conn)} = 1"
    ).fetchone()
    return int(count)


def rank_stage2(
    conn: Backend,
    marks: str,
    cases: list[str],
    params: list[Any],
    *,
    limit: int,
    join: str,
    caps: Mapping[str, int] | None = None,
    scored: bool = False,
) -> None:
    """``engine_flow2``: customers on the pending paths ``marks`` in rank order, the first
    ``limit`` to the new provider, each with their stage-2 path (``cases`` by stage-1 path).
    ``caps``: the plan allocates per mailbox group (None: it does not), each capped group's
    cap in customers (see :func:`_group_choice`).
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
    intl = international(conn)
    tie_break, tie_join = rank_hash(conn)
    grp, counts, group_join, is_new = _group_choice(caps, limit)
    ranked = (
        f"SELECT f.customer_id, f.path, p.tier, {intl} AS intl, {grp}, "
        f"ROW_NUMBER() OVER w AS rank{counts} FROM engine_flow1 f "
        "JOIN engine_paths p ON p.id = f.path "
        f"JOIN customers c ON c.id = f.customer_id {score_join} {tie_join}{group_join} "
        f"WHERE f.path IN ({marks}) "
        # whoever the new provider cannot mail ranks last and never takes a slot
        f"WINDOW w AS (ORDER BY {intl}, p.tier, "
        f"{score_order}c.last_engaged_at IS NULL, {_text_order(conn, 'c.last_engaged_at')} DESC, "
        f"{tie_break}, {email_order(conn)} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    # 0/1 rather than a boolean: PostgreSQL keeps the two types apart.
    chosen = f"SELECT r.*, CASE WHEN {is_new} THEN 1 ELSE 0 END AS is_new FROM ({ranked}) r"
    conn.execute(
        "INSERT INTO engine_flow2 SELECT r.customer_id, "
        f"CASE r.path {' '.join(cases)} END, r.tier, r.rank, r.is_new, r.grp FROM ("
        f"{chosen}) r {join}",
        params,
    )
    if conn.dialect == "postgresql":
        conn.execute("ANALYZE engine_flow2")


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _group_choice(caps: Mapping[str, int] | None, limit: int) -> tuple[str, str, str, str]:
    """The mailbox-group parts of the ranking: the group column, running counts, the join and
    the ``is_new`` test over the ranked rows ``r``.

    A customer takes a new-provider slot when their group is under its cap and the day under
    its limit. Each capped group's running count rides in the ranking's own window (one pass
    over rows already in rank order, no re-sort per group); the customers a cap turned away
    up to a row are the counts past their caps, so the day's slots taken so far are the rank
    minus those (whoever the new provider cannot mail ranks after everyone it can)."""
    plain = f"(r.rank <= {int(limit)} AND r.intl = 0)"
    if caps is None:
        return "NULL AS grp", "", "", plain
    grp = "coalesce(m.grp, 'other') AS grp"
    join = " LEFT JOIN mailbox_customers m ON m.customer_id = f.customer_id"
    binding = [(name, int(cap)) for name, cap in sorted(caps.items()) if cap < limit]
    if not binding:
        return grp, "", join, plain
    counts = "".join(
        f", sum(CASE WHEN m.grp = {_quoted(name)} THEN 1 ELSE 0 END) OVER w AS n{i}"
        for i, (name, _) in enumerate(binding)
    )
    under_cap = " ".join(
        f"WHEN {_quoted(name)} THEN r.n{i} <= {cap}" for i, (name, cap) in enumerate(binding)
    )
    turned_away = " + ".join(
        f"CASE WHEN r.n{i} > {cap} THEN r.n{i} - {cap} ELSE 0 END"
        for i, (_, cap) in enumerate(binding)
    )
    is_new = (
        f"(r.intl = 0 AND (CASE r.grp {under_cap} ELSE TRUE END) "
        f"AND r.rank - ({turned_away}) <= {int(limit)})"
    )
    return grp, counts, join, is_new


_JOURNEY_COLUMNS = "(day, customer_id, path_id, node, due_at, outcome, rank)"
_JOURNEY_SELECT = (
    "SELECT ?, f.customer_id, f.path, s.node, s.due_at, s.outcome, {rank} "
    "FROM {table} f JOIN engine_state s ON s.path = f.path"
)


def _text_order(conn: Backend, column: str) -> str:
    return f'{column} COLLATE "C"' if conn.dialect == "postgresql" else column


def _upsert_journeys(conn: Backend, select: str) -> str:
    """Write journeys over the day's earlier ones: SQLite's ``INSERT OR REPLACE`` as it always
    was, PostgreSQL's ``ON CONFLICT … DO UPDATE``."""
    if conn.dialect == "postgresql":
        return (
            f"INSERT INTO journeys {_JOURNEY_COLUMNS} {select} ON CONFLICT (day, customer_id) "
            "DO UPDATE SET path_id = excluded.path_id, node = excluded.node, "
            "due_at = excluded.due_at, outcome = excluded.outcome, rank = excluded.rank"
        )
    return f"INSERT OR REPLACE INTO journeys {_JOURNEY_COLUMNS} {select}"


def freeze_stage1(conn: Backend, day: int, states: list[tuple[Any, ...]], pending: str) -> None:
    """The day's paths into ``journey_paths`` and the journeys of everyone not waiting for
    the allocation (stage-1 paths other than ``pending``); ``states`` is (path, node now,
    due at, outcome) per path."""
    conn.execute(f"DROP TABLE IF EXISTS {temp(conn, 'engine_state')}")
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
        _upsert_journeys(
            conn,
            _JOURNEY_SELECT.format(rank="NULL", table="engine_flow1")
            + f" WHERE f.path NOT IN ({pending}) ORDER BY f.customer_id",
        ),
        [day],
    )


def freeze_allocation(conn: Backend, day: int) -> None:
    """The ranked customers' journeys and the day's ``allocations`` from ``engine_flow2``."""
    conn.execute(
        _upsert_journeys(
            conn,
            _JOURNEY_SELECT.format(rank="f.rank", table="engine_flow2") + " ORDER BY f.customer_id",
        ),
        [day],
    )
    select = (
        "SELECT ?, customer_id, CASE WHEN is_new = 1 THEN 'new' ELSE 'klaviyo' END, "
        "tier, grp FROM engine_flow2 ORDER BY customer_id"
    )
    if conn.dialect == "postgresql":
        conn.execute(
            f"INSERT INTO allocations (day, customer_id, provider, tier, grp) {select} "
            "ON CONFLICT (day, customer_id) DO UPDATE SET provider = excluded.provider, "
            "tier = excluded.tier, grp = excluded.grp",
            [day],
        )
        return
    conn.execute(
        "INSERT OR REPLACE INTO allocations (day, customer_id, provider, tier, grp) "
        "SELECT ?, customer_id, CASE WHEN is_new THEN 'new' ELSE 'klaviyo' END, "
        "tier, grp FROM engine_flow2 ORDER BY customer_id",
        [day],
    )


def move_journeys(
    conn: Backend,
    day: int,
    where: str,
    params: list[Any],
    *,
    node: str,
    due_at: str | None,
) -> None:
    """Journeys matching ``where`` (alias ``journeys``) are now at ``node``, parked until
    ``due_at`` (None: not parked)."""
    differs = "IS DISTINCT FROM" if conn.dialect == "postgresql" else "IS NOT"
    conn.execute(
        f"UPDATE journeys SET node = ?, due_at = ? WHERE day = ? AND {where} "
        f"AND (node {differs} CAST(? AS TEXT) OR due_at {differs} CAST(? AS TEXT))",
        (node, due_at, day, *params, node, due_at),
    )


@dataclass(frozen=True)
class NewSetFigures:
    """Today's new-provider set against day ``prev``'s: what the exclusion list changes."""

    today: int  # customers in today's set
    added: int  # of them, not in day prev's set (they join the list)
    confirmed: int  # of those added, with a Klaviyo id Klaviyo itself returned (migration 030)
    before: int  # customers in day prev's set


def new_set_figures(conn: Backend, rows: str, prev: int) -> NewSetFigures:
    """The :class:`NewSetFigures` of the new-provider set ``rows`` selects (``customer_id,
    rank``), in one pass over it: the list changes and the Klaviyo work both read them, and
    each pass probes ``allocations`` once per customer of the set."""
    if conn.dialect == "postgresql":
        # hash joins: the customers are read in one pass rather than looked up one by one
        confirmed_sql = "CASE WHEN a.customer_id IS NULL THEN c.klaviyo_id_confirmed ELSE 0 END"
        customer_join = "JOIN customers c ON c.id = t.customer_id "
    else:
        # SQLite looks each customer up: only those added (a lookup for every customer of
        # the set cost more than the rest of the query), and in customer order: in rank
        # order each lookup lands on another page of allocations' index and of customers
        # (1.6 of a 1M-customer dry run's 6.6 CPU s; the sort costs a fraction of that)
        confirmed_sql = (
            "CASE WHEN a.customer_id IS NULL THEN (SELECT c.klaviyo_id_confirmed "
            "FROM customers c WHERE c.id = t.customer_id) ELSE 0 END"
        )
        customer_join = ""
        rows = f"SELECT customer_id FROM ({rows}) s ORDER BY customer_id"
    today, added, confirmed = conn.execute(
        # (day, customer_id) is allocations' key: at most one match each, so an anti-join
        # count, which PostgreSQL plans as one hash join rather than a lookup per customer
        "SELECT count(*), count(*) - count(a.customer_id), "
        f"coalesce(sum({confirmed_sql}), 0) FROM ({rows}) t {customer_join}"
        "LEFT JOIN allocations a ON a.day = ? "
        "AND a.customer_id = t.customer_id AND a.provider = 'new'",
        (prev,),
    ).fetchone()
    before = conn.execute(
        "SELECT count(*) FROM allocations WHERE day = ? AND provider = 'new'", (prev,)
    ).fetchone()[0]
    return NewSetFigures(int(today), int(added), int(confirmed), int(before))


def ranked_customers(
    conn: Backend,
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


def resolved_list_id(conn: Backend, ref: str) -> str | None:
    """The Klaviyo list id an earlier run resolved for ``ref`` (``exclusion:<name>``)."""
    row = conn.execute("SELECT list_id FROM klaviyo_lists WHERE ref = ?", (ref,)).fetchone()
    return None if row is None else str(row[0])


def klaviyo_id_confirmed(conn: Backend, ids: Sequence[int]) -> set[int]:
    """Which of the customers have a Klaviyo id Klaviyo itself returned (migration 030)."""
    return {
        int(cid)
        for (cid,) in conn.execute(
            "SELECT id FROM customers WHERE klaviyo_id_confirmed <> 0 "
            f"AND id IN ({placeholders(ids)})",
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
        return "(1 = 0)", []
    wanted = sorted({int(d) for d in days})
    if wanted[-1] - wanted[0] == len(wanted) - 1:
        # Every day from the first to the last (the past audience of all earlier days): one
        # range scan of the customer's index entries; an IN list probes once per day, and
        # 13 probes per customer were half of day 14's stage 1.
        days_sql = f"BETWEEN {wanted[0]} AND {wanted[-1]}"
    else:
        days_sql = f"IN ({', '.join(map(str, wanted))})"
    return (
        "EXISTS (SELECT 1 FROM allocations a WHERE a.customer_id = c.id "
        f"AND a.provider = 'new' AND a.day {days_sql})"
    ), []


def attribute_equals(conn: Backend, key: str, value: object) -> SqlPart:
    # An imported value sits in attribute_values at its column's position (migration 009);
    # an empty or absent one falls back to the attributes object.
    if conn.dialect == "postgresql":
        return _attribute_equals_pg(key, value)
    path = '$."' + key.replace('"', '\\"') + '"'
    return (
        f"coalesce(nullif(json_extract({values_json_sql('c.attribute_values')}, "
        "(SELECT '$[' || n.position || ']' FROM attribute_names n WHERE n.name = ?)), ''), "
        "json_extract(c.attributes, ?)) = ?"
    ), [key, path, value]


def _attribute_equals_pg(key: str, value: object) -> SqlPart:
    """SQLite's test, spelled for PostgreSQL: an imported cell is text, so it equals only a
    text value (SQLite never equals a text to a number); a value in the attributes object is
    compared as JSON (SQLite's json_extract reads JSON true as 1)."""
    values = values_json_sql("c.attribute_values", "postgresql")
    cell = (
        f"nullif(({values})::json ->> "
        "(SELECT n.position::int FROM attribute_names n WHERE n.name = ?), '')"
    )
    if isinstance(value, str):
        in_object = (
            "CASE WHEN json_typeof(c.attributes::json -> ?) = 'string' "
            "THEN c.attributes::json ->> ? END"
        )
        return f"coalesce({cell}, {in_object}) = ?", [key, key, key, value]
    wanted = [json.dumps(value)]
    if isinstance(value, bool) or value in (0, 1):
        wanted = sorted({json.dumps(bool(value)), json.dumps(int(value))})
    return (
        f"({cell} IS NULL AND (c.attributes::jsonb -> ?) IN "
        f"({', '.join('?::jsonb' for _ in wanted)}))"
    ), [key, key, *wanted]


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
    conn: Backend, weights: Sequence[tuple[str, float]], start: str, end: str
) -> None:
    """``engine_engagement``: each customer's sum of ``weights`` (kind, weight) over their
    pulled Klaviyo events in [start, end), for :func:`rank_stage2`'s ``scored`` ranking."""
    conn.execute(f"DROP TABLE IF EXISTS {temp(conn, SCORE_TABLE)}")
    # PostgreSQL's REAL is 4 bytes; SQLite's, like DOUBLE PRECISION, 8: the ranking must agree
    real = "DOUBLE PRECISION" if conn.dialect == "postgresql" else "REAL"
    conn.execute(
        f"CREATE TEMP TABLE {SCORE_TABLE} (customer_id INTEGER PRIMARY KEY, score {real} NOT NULL)"
    )
    if not weights:
        return
    cases = " ".join("WHEN ? THEN ?" for _ in weights)
    # SQLite's total() is a float sum; PostgreSQL's sum of float8 is the same
    total = (
        f"sum(CAST(CASE k.kind {cases} ELSE 0 END AS DOUBLE PRECISION))"
        if conn.dialect == "postgresql"
        else f"total(CASE k.kind {cases} ELSE 0 END)"
    )
    params: list[object] = [value for pair in weights for value in pair]
    conn.execute(
        f"INSERT INTO {SCORE_TABLE} SELECT k.customer_id, {total} "
        "FROM klaviyo_events k WHERE k.occurred_at >= ? AND k.occurred_at < ? "
        "GROUP BY k.customer_id",
        [*params, start, end],
    )


def test_one(conn: Backend, test: SqlPart, customer_id: int) -> bool:
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
    conn: Backend,
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
    per customer was most of the cost of writing them; and share the settings, stored once for
    the day and node (:func:`_shared_payload`)."""
    if with_profile:
        fields = ", ".join(f"'{name}', c.{name}" for name in PROFILE_FIELDS)
        payload_sql = f"json_object('list', ?, 'template', ?, 'batch_size', ?, {fields})"
        if conn.dialect == "postgresql":
            # the same object, written as SQLite writes it: json_build_object's text puts
            # spaces around every colon and after every comma, so an export of the row
            # differed between engines; its parameters need a type there
            pairs = [
                ("list", "CAST(? AS TEXT)"),
                ("template", "CAST(? AS TEXT)"),
                ("batch_size", "CAST(? AS BIGINT)"),
                *((name, f"c.{name}") for name in PROFILE_FIELDS),
            ]
            members = " || ',' || ".join(
                f"'\"{name}\":' || coalesce(to_json({value})::text, 'null')"
                for name, value in pairs
            )
            payload_sql = f"('{{' || {members} || '}}')"
        payload_params: list[Any] = list(settings.values())
    else:
        payload_sql = "?"
        payload_params = [
            _shared_payload(conn, day, node_id, json.dumps(settings, separators=(",", ":")))
        ]
    head, tail = _insert_new(
        conn,
        _OUTBOX_COLUMNS,
        f"SELECT CAST(? AS TEXT) || c.id, ?, ?, '{WEBHOOK}', '{KLAVIYO}', c.id, {payload_sql}, "
        f"'{PENDING}', CAST(? AS TEXT), NULL, ?, ? {source}",
    )
    cursor = conn.execute(
        head + tail,
        [key_prefix, day, node_id, *payload_params, not_before, now, now, *params],
    )
    return int(cursor.rowcount)


def insert_emails(
    conn: Backend,
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
    allocated to the new provider today and still mailable (``SAFE``) now; the template is the
    day and node's shared payload (:func:`_shared_payload`)."""
    head, tail = _insert_new(
        conn,
        _OUTBOX_COLUMNS,
        f"SELECT CAST(? AS TEXT) || c.id, ?, ?, '{EMAIL}', '{NEW}', c.id, ?, '{PENDING}', "
        "CAST(? AS TEXT), CASE WHEN CAST(? AS TEXT) IS NULL THEN NULL "
        "ELSE CAST(? AS TEXT) || c.id END, ?, ? "
        "FROM journeys j JOIN allocations a ON a.day = j.day AND a.customer_id = j.customer_id "
        "AND a.provider = 'new' JOIN customers c ON c.id = j.customer_id "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email' "
        f"WHERE j.day = ? AND {where} AND {SAFE} ORDER BY j.customer_id",
    )
    cursor = conn.execute(
        head + tail,
        [
            key_prefix,
            day,
            node_id,
            _shared_payload(
                conn, day, node_id, json.dumps({"template": template}, separators=(",", ":"))
            ),
            not_before,
            after,
            after,
            now,
            now,
            day,
            *params,
        ],
    )
    return int(cursor.rowcount)


def allocated_on_paths(conn: Backend, day: int, where: str, params: list[Any]) -> int:
    """Customers of the day's journeys matching ``where`` allocated to the new provider."""
    row = conn.execute(
        f"SELECT count(*) FROM journeys j WHERE j.day = ? AND j.outcome = 'new' AND {where}",
        [day, *params],
    ).fetchone()
    return int(row[0])


def mark_unmailed_skipped(
    conn: Backend, day: int, where: str, params: list[Any], key_prefix: str
) -> None:
    """Allocated customers on these paths without an email row become ``skipped``."""
    conn.execute(
        "UPDATE journeys SET outcome = 'skipped' WHERE day = ? AND outcome = 'new' AND "
        f"customer_id IN (SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {where}) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = CAST(? AS TEXT) || "
        "journeys.customer_id)",
        [day, day, *params, key_prefix],
    )


def reject_consent(
    conn: Backend,
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
    return int(cursor.rowcount)
