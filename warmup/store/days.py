"""The ``days`` table: one row per sending day a run has started — its status, limits and
counts — and the ``runs`` that worked on it. Named operations; nothing else writes it."""

from __future__ import annotations

import sqlite3
from typing import Any


def latest_day(conn: sqlite3.Connection) -> int | None:
    """The highest day a run has recorded, if any."""
    row = conn.execute("SELECT max(day) FROM days").fetchone()
    return int(row[0]) if row and row[0] else None


def day_row(conn: sqlite3.Connection, day: int) -> Any:
    return conn.execute("SELECT * FROM days WHERE day = ?", (day,)).fetchone()
