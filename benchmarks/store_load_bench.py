"""Bulk load into a store: PostgreSQL COPY against SQLite executemany, and a whole store copy.

    python benchmarks/store_load_bench.py [--rows 100000] [--server "host=127.0.0.1 user=postgres"]

Loads the same generated customer rows (the store's widest hot table) through each backend's
``bulk_load`` into a freshly migrated store, one transaction each: SQLite's executemany (the
anchor: the embedded default), PostgreSQL's COPY FROM STDIN, and PostgreSQL's executemany (what
COPY replaces). Then `warmup store copy` of the SQLite store to PostgreSQL (copy + read-back
verification). CPU is this process's own; for PostgreSQL the server backend's CPU is read from
/proc (same machine) and shown apart, since the work is split between the two processes.
Each PostgreSQL step uses its own database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import psycopg

from warmup.store import Store, open_store
from warmup.store.copy import copy_store

NOW = "2026-12-01T00:00:00+00:00"
COLUMNS = (
    "id", "email", "email_valid", "phone", "external_id", "klaviyo_id", "first_name",
    "last_name", "attributes", "last_engaged_at", "created_at", "updated_at",
)  # fmt: skip


def rows(n: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, n + 1):
        yield (
            i, f"user{i}@example.com", 1, f"+42060{i:07d}" if i % 2 else None, f"ext-{i}",
            f"K{i:08d}", f"Name{i}", f"Surname{i}", f'{{"city": "Brno", "n": {i}}}',
            f"2026-{i % 11 + 1:02d}-{i % 28 + 1:02d}T10:00:00+00:00", NOW, NOW,
        )  # fmt: skip


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu(store: Store | None) -> float | None:
    """CPU seconds of this connection's PostgreSQL backend process, if it runs here."""
    if store is None or store.dialect != "postgresql":
        return None
    pid = store.backend.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, store: Store | None, work: Callable[[], object]) -> float:
    server_before = server_cpu(store)
    wall, mine = time.perf_counter(), cpu()
    work()
    wall, mine = time.perf_counter() - wall, cpu() - mine
    server_after = server_cpu(store)
    server = (
        f" + server {server_after - server_before:5.2f} CPU s"
        if server_before is not None and server_after is not None
        else ""
    )
    print(f"{name:<34} {mine:6.2f} CPU s{server}  {wall:6.2f} s wall", flush=True)
    return mine


def load(store: Store, n: int, *, executemany: bool = False) -> None:
    backend = store.backend
    with backend.transaction():
        if executemany:
            marks = ", ".join("?" for _ in COLUMNS)
            backend.executemany(
                f"INSERT INTO customers ({', '.join(COLUMNS)}) VALUES ({marks})", rows(n)
            )
        else:
            backend.bulk_load("customers", COLUMNS, rows(n))
        backend.after_bulk_load("customers")
    assert backend.execute("SELECT count(*) FROM customers").fetchone()[0] == n


class Databases:
    def __init__(self, server: str) -> None:
        self.server = server
        self.made: list[str] = []

    def new(self) -> str:
        name = f"warmup_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.server, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        self.made.append(name)
        params = psycopg.conninfo.conninfo_to_dict(self.server)
        host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
        return f"postgresql://{params.get('user', 'postgres')}@{host}:{port}/{name}"

    def drop(self) -> None:
        with psycopg.connect(self.server, dbname="postgres", autocommit=True) as admin:
            for name in self.made:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--server",
        default=os.environ.get("WARMUP_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres"),
        help="libpq conninfo of a server to make throw-away databases on",
    )
    args = parser.parse_args()
    databases = Databases(args.server)
    try:
        with tempfile.TemporaryDirectory() as folder:
            sqlite_path = Path(folder) / "bench.db"
            print(f"{args.rows} customers, one transaction each", flush=True)
            with closing(open_store(sqlite_path)) as store:
                anchor = measure(
                    "sqlite executemany (anchor)", store, lambda: load(store, args.rows)
                )
            with closing(open_store(databases.new())) as store:
                copy = measure("postgresql COPY", store, lambda: load(store, args.rows))
            with closing(open_store(databases.new())) as store:
                measure(
                    "postgresql executemany",
                    store,
                    lambda: load(store, args.rows, executemany=True),
                )
            # The copy opens its own connections: the server's CPU is not shown for it.
            target = databases.new()
            measure(
                "store copy sqlite -> postgresql", None, lambda: copy_store(sqlite_path, target)
            )
            print(f"COPY's client CPU: {copy / anchor:.2f}× the anchor's", flush=True)
    finally:
        databases.drop()


if __name__ == "__main__":
    main()
