"""Named schema migrations: the only place with SQL DDL.

Each migration runs once, in order, inside a transaction, and is recorded in ``_migrations``.
Append new ones at the end; never edit one that has shipped (an older store is migrated, not
broken). Later subsystems (Klaviyo sync, email, consent) append their own here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run a DDL script statement by statement: ``executescript`` would commit the migration's
    transaction half-way."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        db.execute(statement)


def migration(name: str) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if any(existing == name for existing, _ in MIGRATIONS):
            raise RuntimeError(f"duplicate migration name {name!r}")
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("001_foundation")
def _foundation(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        -- email is the hard id: trimmed and lowercased before it gets here.
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            email_valid INTEGER NOT NULL DEFAULT 1,
            phone TEXT,
            external_id TEXT,
            klaviyo_id TEXT,
            first_name TEXT,
            last_name TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            last_open_at TEXT,
            last_click_at TEXT,
            -- max(last open, last click): most-engaged-first ordering reads this one column.
            last_engaged_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- status: subscribed | never_subscribed | unsubscribed | suppressed
        CREATE TABLE consents (
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            channel TEXT NOT NULL,
            status TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (customer_id, channel)
        ) WITHOUT ROWID;

        CREATE TABLE consent_changes (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            channel TEXT NOT NULL,
            old_status TEXT,
            new_status TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            source TEXT NOT NULL
        );
        CREATE INDEX consent_changes_customer ON consent_changes(customer_id);

        -- Every change of a consent status is kept, whoever makes it (import, unsubscribe
        -- service, Klaviyo pull): the history lives in the database, not in each writer.
        CREATE TRIGGER consents_history AFTER UPDATE OF status ON consents
        WHEN old.status IS NOT new.status
        BEGIN
            INSERT INTO consent_changes
                (customer_id, channel, old_status, new_status, changed_at, source)
            VALUES (new.customer_id, new.channel, old.status, new.status, new.changed_at,
                    new.source);
        END;

        CREATE TABLE segment_members (
            segment TEXT NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            added_at TEXT NOT NULL,
            PRIMARY KEY (segment, customer_id)
        ) WITHOUT ROWID;

        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            file TEXT NOT NULL,
            segment TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            rows_read INTEGER NOT NULL DEFAULT 0,
            rows_loaded INTEGER NOT NULL DEFAULT 0,
            rows_rejected INTEGER NOT NULL DEFAULT 0
        );

        -- One row per sending day once it has been planned; the engine owns these.
        -- status: running | waiting | completed | failed
        CREATE TABLE days (
            day INTEGER PRIMARY KEY,
            date TEXT NOT NULL,
            status TEXT NOT NULL,
            new_limit INTEGER,
            new_allocated INTEGER,
            klaviyo_allocated INTEGER,
            started_at TEXT,
            completed_at TEXT,
            forced_reason TEXT,
            guardrail_override TEXT,
            volume_day INTEGER
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            day INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            pid INTEGER,
            argv TEXT
        );

        -- provider: 'new' | 'klaviyo'; tier: allocation priority tier (0 first).
        CREATE TABLE allocations (
            day INTEGER NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            provider TEXT NOT NULL,
            tier INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, customer_id)
        ) WITHOUT ROWID;
        CREATE INDEX allocations_customer ON allocations(customer_id, provider);

        -- Per customer and day: nodes passed (JSON list of ids), where they are parked, outcome.
        CREATE TABLE journeys (
            day INTEGER NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            path TEXT NOT NULL DEFAULT '[]',
            node TEXT,
            due_at TEXT,
            outcome TEXT,
            PRIMARY KEY (day, customer_id)
        ) WITHOUT ROWID;

        -- The durable outbox. key = plan:day:node:customer (idempotency key).
        -- kind: email | webhook
        -- status: pending | sending | sent | failed | bounced | uncertain | on_hold
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            day INTEGER NOT NULL,
            node_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            provider TEXT NOT NULL,
            customer_id INTEGER REFERENCES customers(id),
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            not_before TEXT,
            -- key of the outbox row that must be 'sent' first (the exclusion-list call before
            -- the email): dispatchers skip this row until then.
            after_key TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX outbox_status ON outbox(status, kind, day);
        CREATE INDEX outbox_customer ON outbox(customer_id);
        CREATE INDEX outbox_after ON outbox(after_key);

        -- Provider and Klaviyo events, stored once per (source, event_id).
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            customer_id INTEGER REFERENCES customers(id),
            email TEXT,
            day INTEGER,
            occurred_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            processed_at TEXT,
            UNIQUE (source, event_id)
        );
        CREATE INDEX events_type_day ON events(type, day);

        -- One run per plan at a time; a row whose pid is gone is a stale lock.
        CREATE TABLE locks (
            name TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            acquired_at TEXT NOT NULL
        );
        """,
    )


@migration("020_engine_journeys")
def _engine_journeys(db: sqlite3.Connection) -> None:
    # rank: place in the day's allocation order (explain prints it); last_label: the edge a
    # walk ended on, which together with the node list identifies the path exactly.
    run_script(
        db,
        """
        ALTER TABLE journeys ADD COLUMN rank INTEGER;
        ALTER TABLE journeys ADD COLUMN last_label TEXT;
        """,
    )


@migration("010_klaviyo_sync")
def _klaviyo_sync(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        -- Klaviyo list ids resolved by name, so a list is looked up (or created) once.
        -- ref: 'exclusion', 'unsubscribe', or 'exclusion:<name>' for per-day names.
        CREATE TABLE klaviyo_lists (
            ref TEXT PRIMARY KEY,
            name TEXT,
            list_id TEXT NOT NULL,
            created INTEGER NOT NULL DEFAULT 0,
            resolved_at TEXT NOT NULL
        );

        -- Who Klaviyo confirmed (204/202 + job completion) to be in which list.
        CREATE TABLE klaviyo_members (
            list_id TEXT NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            added_at TEXT NOT NULL,
            PRIMARY KEY (list_id, customer_id)
        ) WITHOUT ROWID;
        CREATE INDEX klaviyo_members_customer ON klaviyo_members(customer_id);
        """,
    )


@migration("030_klaviyo_confirmed_ids")
def _klaviyo_confirmed_ids(db: sqlite3.Connection) -> None:
    # An export's "Klaviyo ID" may be stale (a merged or deleted profile), and Klaviyo answers
    # 204 to adding an unknown id while adding nobody: only ids Klaviyo itself returned to us
    # are used for list calls.
    db.execute("ALTER TABLE customers ADD COLUMN klaviyo_id_confirmed INTEGER NOT NULL DEFAULT 0")


@migration("040_journeys_path_ids")
def _journeys_path_ids(db: sqlite3.Connection) -> None:
    # A day's path through the graph is one of a few enumerated paths: the day's paths are
    # stored once in `journey_paths` and each journey names its path by id (`path_id`), instead
    # of repeating the node list in every customer's row. Rows written before this migration
    # (and by hand) keep their node list in `journeys.path` and a NULL `path_id`;
    # `journey_rows` reads both alike.
    run_script(
        db,
        """
        CREATE TABLE journey_paths (
            day INTEGER NOT NULL,
            id INTEGER NOT NULL,
            path TEXT NOT NULL,
            last_label TEXT,
            PRIMARY KEY (day, id)
        ) WITHOUT ROWID;
        ALTER TABLE journeys ADD COLUMN path_id INTEGER;
        CREATE VIEW journey_rows AS
            SELECT j.day, j.customer_id, coalesce(p.path, j.path) AS path, j.node, j.due_at,
                   j.outcome, j.rank, coalesce(p.last_label, j.last_label) AS last_label,
                   j.path_id
            FROM journeys j LEFT JOIN journey_paths p ON p.day = j.day AND p.id = j.path_id;
        -- No query looks rows up by after_key (dispatchers join after_key to the key index),
        -- and keeping this index cost an index write per email row.
        DROP INDEX IF EXISTS outbox_after;
        """,
    )


@migration("050_mailbox_groups")
def _mailbox_groups(db: sqlite3.Connection) -> None:
    # Per-mailbox-provider ramps (warmup.mailboxes). `mailbox_domains` caches each company
    # domain's MX hosts (resolved once, re-used across days and runs; `failed` rows are tried
    # again); the group is not stored there, so a plan's own groups can change. A day's groups
    # (eligible, cap, new) go to `mailbox_days` when its allocation is frozen, and each
    # allocated customer's group to `allocations.grp` (NULL without groups), for per-group
    # guardrails: written by the allocation's own INSERT, so it costs no second table.
    run_script(
        db,
        """
        CREATE TABLE mailbox_domains (
            domain TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            mx TEXT NOT NULL DEFAULT '',
            resolved_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE mailbox_days (
            day INTEGER NOT NULL,
            grp TEXT NOT NULL,
            eligible INTEGER NOT NULL,
            cap INTEGER,
            new INTEGER NOT NULL,
            held TEXT,
            PRIMARY KEY (day, grp)
        ) WITHOUT ROWID;
        -- The highest customer id whose domain the MX step has seen: later runs scan only
        -- customers added since (and retry the failed domains).
        CREATE TABLE mailbox_scans (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            customer_id INTEGER NOT NULL
        );
        ALTER TABLE allocations ADD COLUMN grp TEXT;
        """,
    )
