"""The mailbox groups' tables: cached MX answers per company domain (``mailbox_domains``), how
far the customers were scanned for new domains (``mailbox_scans``, the domain rules' version in
``meta``), and each allocated day's groups (``mailbox_days``), with the reads of the outbox,
allocations and events that give a group its guardrail figures.

Every statement warmup.mailboxes runs against the store is one of the operations below; the
group function used inside the engine's ranking stays in its set-based SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from warmup.store.backends import Backend, Executes
from warmup.store.outbox import BOUNCED, EMAIL, NEW, SENT

# `mailbox_domains.status`: MX hosts found, the domain has none, the lookup failed (asked again)
MX_OK: Final = "ok"
MX_NONE: Final = "none"
MX_FAILED: Final = "failed"

# one day's group as recorded: grp, eligible, cap, new, held
DayGroup = tuple[str, int, int | None, int, str | None]
# one group's sending day: grp, day, sent, hard, soft, complained, unsubscribed
GroupFigures = tuple[str, int, int, int, int, int, int]

# Integers, not booleans, in the aggregates: the same text on SQLite and PostgreSQL.
_GROUP_FIGURES_SQL = f"""
WITH flags AS MATERIALIZED (
    SELECT day, customer_id,
           max(CASE WHEN type = 'hard_bounced' THEN 1 ELSE 0 END) AS hard,
           max(CASE WHEN type IN ('soft_bounced', 'deferred') THEN 1 ELSE 0 END) AS soft,
           max(CASE WHEN type = 'complained' THEN 1 ELSE 0 END) AS complained,
           max(CASE WHEN type = 'unsubscribed' THEN 1 ELSE 0 END) AS unsub
    FROM events
    WHERE type IN ('hard_bounced', 'soft_bounced', 'deferred', 'complained', 'unsubscribed')
      AND day < ? AND customer_id IS NOT NULL
    GROUP BY day, customer_id
), mail AS (
    SELECT a.grp, o.day,
           CASE WHEN o.status = '{BOUNCED}' OR coalesce(f.hard, 0) = 1 THEN 1 ELSE 0 END AS hard,
           coalesce(f.soft, 0) AS soft, coalesce(f.complained, 0) AS complained,
           coalesce(f.unsub, 0) AS unsub
    FROM outbox o
    JOIN allocations a ON a.day = o.day AND a.customer_id = o.customer_id AND a.grp IS NOT NULL
    LEFT JOIN flags f ON f.day = o.day AND f.customer_id = o.customer_id
    WHERE o.kind = '{EMAIL}' AND o.provider = '{NEW}' AND o.status IN ('{SENT}', '{BOUNCED}')
      AND o.day < ?
)
SELECT grp, day, count(*), sum(hard), sum(CASE WHEN soft = 1 AND hard = 0 THEN 1 ELSE 0 END),
       sum(complained), sum(unsub)
FROM mail GROUP BY grp, day ORDER BY grp, day
"""


# --- the MX cache ---------------------------------------------------------------------------


def customer_domains(conn: Backend, after: int) -> Iterator[str]:
    """The distinct lower-cased text after the first ``@`` of the addresses of customers with
    an id above ``after`` (a quoted ``@`` in the local part leaves an ``@`` in it)."""
    for (domain,) in conn.execute(
        f"SELECT DISTINCT {_raw_domain(conn, 'email')} FROM customers WHERE id > ?", (after,)
    ):
        yield domain


def last_customer_id(conn: Backend) -> int:
    """The highest customer id (0: no customers)."""
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()
    return int(last)


def scanned_up_to(conn: Backend) -> int:
    """The last customer id a scan for new domains read (0: never scanned)."""
    row = conn.execute("SELECT customer_id FROM mailbox_scans WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def set_scanned_up_to(conn: Backend, customer_id: int) -> None:
    conn.execute(
        "INSERT INTO mailbox_scans (id, customer_id) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id",
        (customer_id,),
    )


def meta_value(conn: Backend, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    value: str | None = None if row is None else row[0]
    return value


def set_meta_value(conn: Backend, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def domain_statuses(conn: Backend) -> dict[str, str]:
    """Every cached domain's lookup status."""
    return dict(conn.execute("SELECT domain, status FROM mailbox_domains"))


def resolved_before(conn: Backend, status: str, cutoff: str) -> set[str]:
    """Domains whose ``status`` answer was stored before ``cutoff`` (ISO time)."""
    return {
        d
        for (d,) in conn.execute(
            "SELECT domain FROM mailbox_domains WHERE status = ? AND resolved_at < ?",
            (status, cutoff),
        )
    }


def store_answers(conn: Backend, answers: Iterable[tuple[str, str, str, str]]) -> None:
    """Store lookups' answers: (domain, status, MX hosts space-separated, resolved at)."""
    conn.executemany(
        "INSERT INTO mailbox_domains (domain, status, mx, resolved_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (domain) DO UPDATE SET status = excluded.status, mx = excluded.mx, "
        "resolved_at = excluded.resolved_at",
        answers,
    )


def mx_hosts(conn: Backend) -> dict[str, str]:
    """Domain → its MX hosts, space-separated, for the domains with MX hosts."""
    return dict(conn.execute("SELECT domain, mx FROM mailbox_domains WHERE status = ?", (MX_OK,)))


def definite_domains(conn: Backend) -> set[str]:
    """Domains with a definite answer (MX hosts, or none)."""
    return {
        d
        for (d,) in conn.execute(
            "SELECT domain FROM mailbox_domains WHERE status != ?", (MX_FAILED,)
        )
    }


# --- each customer's group (migration 010) ---------------------------------------------------


def _raw_domain(conn: Backend, column: str) -> str:
    """The raw domain text of an address as the SQL here reads it (after the first ``@``): the
    decision per raw text is made in Python once per distinct domain, not once per customer.
    PostgreSQL spells SQLite's ``instr`` ``strpos``."""
    find = "strpos" if conn.dialect == "postgresql" else "instr"
    return f"lower(substr({column}, {find}({column}, '@') + 1))"


@contextmanager
def _rows_table(
    conn: Backend, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
) -> Iterator[tuple[str, list[object]]]:
    """``rows`` as a table to join: (its FROM item named ``name``, that item's parameters).

    SQLite loads a temp table. PostgreSQL reads them as arrays through ``unnest`` instead: a
    temp table here would be the session's first, and the engine's ``temp_buffers`` setting
    must come before that (warmup.engine.sql)."""
    if conn.dialect == "postgresql":
        placeholders = ", ".join(f"?::{kind}[]" for _, kind in columns)
        names = ", ".join(c for c, _ in columns)
        arrays: list[object] = [[r[i] for r in rows] for i in range(len(columns))]
        yield f"unnest({placeholders}) AS {name} ({names})", arrays
        return
    conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    conn.execute(
        f"CREATE TEMP TABLE {name} ("
        + ", ".join(f"{c} {kind.upper()}" for c, kind in columns)
        + f", PRIMARY KEY ({columns[0][0]}))"
    )
    conn.bulk_load(name, [c for c, _ in columns], (tuple(r) for r in rows))
    try:
        yield name, []
    finally:
        conn.execute(f"DROP TABLE temp.{name}")


def customer_raw_domains(conn: Backend, after: int) -> list[str]:
    """The distinct raw domains of customers with an id above ``after``."""
    return [
        str(raw)
        for (raw,) in conn.execute(
            f"SELECT DISTINCT {_raw_domain(conn, 'c.email')} FROM customers c WHERE c.id > ?",
            (after,),
        )
        if raw is not None
    ]


def assign_customers(
    conn: Backend, after: int, decisions: Iterable[tuple[str, str, str, int]]
) -> None:
    """Each customer with an id above ``after`` gets the group its raw domain was decided as:
    ``decisions`` is (raw domain, domain, group, fallback) per raw domain."""
    columns = [("raw", "text"), ("domain", "text"), ("grp", "text"), ("fallback", "integer")]
    with _rows_table(conn, "d", columns, list(decisions)) as (table, params):
        conn.execute(
            "INSERT INTO mailbox_customers (customer_id, domain, grp, fallback) "
            f"SELECT c.id, d.domain, d.grp, d.fallback FROM customers c JOIN {table} "
            f"ON d.raw = {_raw_domain(conn, 'c.email')} WHERE c.id > ? "
            "ON CONFLICT (customer_id) DO UPDATE SET domain = excluded.domain, "
            "grp = excluded.grp, fallback = excluded.fallback",
            (*params, after),
        )


def regroup_domains(conn: Backend, changes: Iterable[tuple[str, str, int]]) -> None:
    """The customers of domains whose decision changed get the new one: (domain, group,
    fallback) per domain."""
    rows = list(changes)
    if not rows:
        return
    columns = [("domain", "text"), ("grp", "text"), ("fallback", "integer")]
    with _rows_table(conn, "t", columns, rows) as (table, params):
        # a correlated UPDATE: one text for both engines
        conn.execute(
            f"UPDATE mailbox_customers SET "
            f"grp = (SELECT t.grp FROM {table} WHERE t.domain = mailbox_customers.domain), "
            f"fallback = (SELECT t.fallback FROM {table} "
            "WHERE t.domain = mailbox_customers.domain) "
            f"WHERE domain IN (SELECT t.domain FROM {table})",
            params * 3,
        )


def forget_customer_groups(conn: Backend) -> None:
    """Every customer's group is decided again (the plan's groups changed)."""
    conn.execute("DELETE FROM mailbox_customers")


# --- the days' groups -----------------------------------------------------------------------


def replace_day(conn: Backend, day: int, groups: Iterable[DayGroup]) -> None:
    """Record ``day``'s groups in place of any recorded before (inside the caller's
    transaction)."""
    conn.execute("DELETE FROM mailbox_days WHERE day = ?", (day,))
    conn.executemany(
        "INSERT INTO mailbox_days (day, grp, eligible, cap, new, held) VALUES (?, ?, ?, ?, ?, ?)",
        [(day, *g) for g in groups],
    )


def day_groups(conn: Executes, day: int) -> list[DayGroup]:
    """``day``'s groups as recorded (empty: the day was not allocated per group)."""
    found: list[DayGroup] = conn.execute(
        "SELECT grp, eligible, cap, new, held FROM mailbox_days WHERE day = ?", (day,)
    ).fetchall()
    return found


def day_holds(conn: Executes, day: int) -> list[tuple[str, int | None, str | None]]:
    """``day``'s recorded groups by name: grp, cap, why held (None: not held)."""
    found: list[tuple[str, int | None, str | None]] = conn.execute(
        "SELECT grp, cap, held FROM mailbox_days WHERE day = ? ORDER BY grp", (day,)
    ).fetchall()
    return found


def customer_day_group(conn: Executes, day: int, customer_id: int) -> DayGroup | None:
    """The recorded group of the customer's allocation on ``day`` (None: no groups that day or
    no allocation)."""
    row: DayGroup | None = conn.execute(
        "SELECT m.grp, m.eligible, m.cap, m.new, m.held FROM allocations a "
        "JOIN mailbox_days m ON m.day = a.day AND m.grp = a.grp "
        "WHERE a.day = ? AND a.customer_id = ?",
        (day, customer_id),
    ).fetchone()
    return row


def reached_days(
    conn: Executes,
) -> list[tuple[int, str, int, int | None, int, str | None]]:
    """Every recorded day and group with eligible or new customers: day, grp, eligible, cap,
    new, held."""
    found: list[tuple[int, str, int, int | None, int, str | None]] = conn.execute(
        "SELECT day, grp, eligible, cap, new, held FROM mailbox_days WHERE eligible > 0 "
        "OR new > 0 ORDER BY day"
    ).fetchall()
    return found


def last_new(conn: Executes, grp: str, before: int) -> int | None:
    """The group's new customers on its last day before ``before`` that had any (None: none)."""
    row = conn.execute(
        "SELECT new FROM mailbox_days WHERE grp = ? AND day < ? AND new > 0 "
        "ORDER BY day DESC LIMIT 1",
        (grp, before),
    ).fetchone()
    return None if row is None else int(row[0])


def group_figures(conn: Executes, before: int) -> list[GroupFigures]:
    """Each group's new-provider emails per sending day before ``before`` and the events about
    them, by group then day."""
    return [
        (str(g), int(d), int(n), int(h), int(s), int(c), int(u))
        for g, d, n, h, s, c, u in conn.execute(_GROUP_FIGURES_SQL, (before, before))
    ]
