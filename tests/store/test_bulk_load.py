"""The bulk-load primitive: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from contextlib import closing

from warmup.store import open_store

NOW = "2026-12-01T00:00:00+00:00"


def test_bulk_load_then_ordinary_inserts(store_location: str) -> None:
    rows = [
        (
            i,
            f"user{i}@example.com",
            None if i % 3 else f"+4206{i:08d}",
            '{"t": "a\\tb\n"}',
            NOW,
            NOW,
        )
        for i in range(1, 5001)
    ]
    columns = ("id", "email", "phone", "attributes", "created_at", "updated_at")
    with closing(open_store(store_location)) as store:
        backend = store.backend
        with backend.transaction():
            # Tabs, backslashes and newlines are COPY's own syntax: they must arrive as text.
            loaded = backend.bulk_load("customers", columns, iter(rows))
            backend.after_bulk_load("customers")
        assert loaded == 5000
        back = backend.execute(f"SELECT {', '.join(columns)} FROM customers ORDER BY id").fetchall()
        assert [tuple(r) for r in back] == rows
        # Ids loaded explicitly do not collide with the next ordinary insert.
        new = backend.execute(
            "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
            ("next@example.com", NOW, NOW),
        ).fetchone()
        assert new[0] == 5001
