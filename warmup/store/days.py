"""The ``days`` table (one row per sending day a run has started: status, limits, counts) and
``runs`` (one row per run of a day). Named operations; nothing else writes these tables.

Day statuses: ``running`` (a run is on it, or one was killed), ``waiting`` (parked customers
are due later), ``completed``, ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmup.store.backends import Executes

RUNNING, WAITING, COMPLETED, FAILED = "running", "waiting", "completed", "failed"


@dataclass(frozen=True)
class DayState:
    day: int
    date: str
    status: str
    completed_at: str | None
    new_allocated: int | None

    @property
    def frozen(self) -> bool:
        """The day's allocation and journeys are recorded (a re-run reuses them)."""
        return self.new_allocated is not None


def states(conn: Executes) -> dict[int, DayState]:
    """Every recorded day by number."""
    return {
        int(r[0]): DayState(int(r[0]), r[1], r[2], r[3], r[4])
        for r in conn.execute("SELECT day, date, status, completed_at, new_allocated FROM days")
    }


def latest_day(conn: Executes) -> int | None:
    """The highest day a run has recorded, if any."""
    row = conn.execute("SELECT max(day) FROM days").fetchone()
    return int(row[0]) if row and row[0] else None


def rows(conn: Executes) -> list[Any]:
    """Every recorded day's whole row (``sqlite3.Row`` when the connection uses that row
    factory)."""
    return list(conn.execute("SELECT * FROM days").fetchall())


def named_rows(conn: Executes) -> list[dict[str, Any]]:
    """Every recorded day's whole row as a dict by column name, on either engine."""
    cursor = conn.execute("SELECT * FROM days ORDER BY day")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def volume_days(conn: Executes) -> dict[int, int]:
    """Which schedule day's volume each recorded day used (its own unless held back)."""
    return {
        int(day): int(volume or day)
        for day, volume in conn.execute("SELECT day, volume_day FROM days")
    }


def day_row(conn: Executes, day: int) -> Any:
    """The whole row of a day (``sqlite3.Row`` when the connection uses that row factory)."""
    return conn.execute("SELECT * FROM days WHERE day = ?", (day,)).fetchone()


def start(
    conn: Executes, day: int, when: str, *, started_at: str, forced_reason: str | None
) -> None:
    """A first run of the day: its row, ``running``."""
    conn.execute(
        "INSERT INTO days (day, date, status, started_at, forced_reason) "
        "VALUES (?, ?, 'running', ?, ?)",
        (day, when, started_at, forced_reason),
    )


def restart(conn: Executes, day: int, *, forced_reason: str | None) -> None:
    """A later run of the day: ``running`` again, keeping an earlier --force reason."""
    conn.execute(
        "UPDATE days SET status = 'running', "
        "forced_reason = COALESCE(?, forced_reason) WHERE day = ?",
        (forced_reason, day),
    )


def set_volume(conn: Executes, day: int, *, volume_day: int | None, override: str | None) -> None:
    """Which schedule day's volume applies (a guardrail hold) and an override's reason."""
    conn.execute(
        "UPDATE days SET volume_day = ?, guardrail_override = "
        "COALESCE(?, guardrail_override) WHERE day = ?",
        (volume_day, override, day),
    )


def record_allocation(conn: Executes, day: int, *, limit: int, new: int, klaviyo: int) -> None:
    conn.execute(
        "UPDATE days SET new_limit = ?, new_allocated = ?, klaviyo_allocated = ? WHERE day = ?",
        (limit, new, klaviyo, day),
    )


def allocation(conn: Executes, day: int) -> tuple[int, int, int]:
    """(new-provider limit, allocated to new, allocated to Klaviyo) as recorded."""
    row = conn.execute(
        "SELECT new_limit, new_allocated, klaviyo_allocated FROM days WHERE day = ?", (day,)
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def finish(conn: Executes, day: int, status: str, completed_at: str | None) -> None:
    conn.execute(
        "UPDATE days SET status = ?, completed_at = ? WHERE day = ?", (status, completed_at, day)
    )


def fail_if_running(conn: Executes, day: int) -> None:
    conn.execute("UPDATE days SET status = 'failed' WHERE day = ? AND status = 'running'", (day,))


def add_run(conn: Executes, day: int, *, started_at: str, pid: int, argv: str) -> int:
    # RETURNING, not lastrowid: psycopg's cursors have no row id.
    row = conn.execute(
        "INSERT INTO runs (day, started_at, pid, argv) VALUES (?, ?, ?, ?) RETURNING id",
        (day, started_at, pid, argv),
    ).fetchone()
    return int(row[0])


def finish_run(conn: Executes, run_id: int, *, finished_at: str, outcome: str) -> None:
    conn.execute(
        "UPDATE runs SET finished_at = ?, outcome = ? WHERE id = ?",
        (finished_at, outcome, run_id),
    )
