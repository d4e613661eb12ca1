"""Reads of a day's journeys and of the history a journey is explained by.

``journeys`` (and its ``journey_rows`` view) is written set-at-a-time by the engine's
evaluation (``warmup.engine.journeys``); these are the named reads everything else uses.
Rows come back as ``sqlite3.Row`` when the caller's connection uses that row factory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from warmup.store.backends import Executes


def journey_row(conn: Executes, day: int, customer_id: int) -> Any:
    """One customer's journey on a day (path, last label, outcome, rank, parked node…)."""
    return conn.execute(
        "SELECT * FROM journey_rows WHERE day = ? AND customer_id = ?", (day, customer_id)
    ).fetchone()


def new_provider_days(conn: Executes, customer_id: int, days: Sequence[int]) -> list[int]:
    """Which of ``days`` allocated the customer to the new provider, in order."""
    marks = ",".join(str(int(d)) for d in days) or "0"
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT day FROM allocations WHERE customer_id = ? AND provider = 'new' "
            f"AND day IN ({marks}) ORDER BY day",
            (customer_id,),
        )
    ]


def action_row(conn: Executes, day: int, node_id: str, customer_id: int) -> Any:
    """The outbox row (key, status) a node wrote for the customer on the day, if any."""
    return conn.execute(
        "SELECT key, status FROM outbox WHERE day = ? AND node_id = ? AND customer_id = ?",
        (day, node_id, customer_id),
    ).fetchone()


def path_counts(conn: Executes, day: int) -> list[tuple[str, str, int]]:
    """(node ids walked as JSON, last label, customers) of a day's frozen journeys."""
    return [
        (str(path), str(label), int(count))
        for path, label, count in conn.execute(
            "SELECT path, last_label, count(*) FROM journey_rows WHERE day = ? "
            "GROUP BY path, last_label",
            (day,),
        )
    ]


def stored_paths(conn: Executes, day: int) -> dict[tuple[str, str], list[int]]:
    """The day's path ids (migration 040) by (node ids as JSON, last label). Several ids can
    share a key: a branch whose ``yes`` and ``no`` lead to the same node walks the same nodes
    on two paths."""
    out: dict[tuple[str, str], list[int]] = {}
    for path_id, path, label in conn.execute(
        "SELECT id, path, last_label FROM journey_paths WHERE day = ?", (day,)
    ):
        out.setdefault((str(path), str(label)), []).append(int(path_id))
    return out


def by_path_and_place(conn: Executes, day: int) -> list[tuple[Any, ...]]:
    """(node ids walked as JSON, node now, outcome, customers) of a day's journeys."""
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT path, node, outcome, count(*) FROM journey_rows WHERE day = ? "
            "GROUP BY path, node, outcome",
            (day,),
        )
    ]


def parked_by_node(conn: Executes, day: int, now: str) -> list[tuple[Any, ...]]:
    """(node, customers) still parked at a wait at ``now`` (UTC ISO)."""
    return [
        tuple(row)
        for row in conn.execute(
            "SELECT node, count(*) FROM journeys WHERE day = ? AND due_at > ? GROUP BY node",
            (day, now),
        )
    ]


def latest_day(conn: Executes) -> int | None:
    """The highest day with journeys, if any."""
    row = conn.execute("SELECT max(day) FROM journeys").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def next_due(conn: Executes, day: int, after: str) -> str | None:
    """When the first customer parked at a wait on ``day`` falls due after ``after`` (UTC ISO)."""
    row = conn.execute(
        "SELECT min(due_at) FROM journeys WHERE day = ? AND due_at IS NOT NULL AND due_at > ?",
        (day, after),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])
